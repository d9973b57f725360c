#!/usr/bin/env python3
"""Entry point of both CLIs (cdktf.json and cdk8s.yaml run it) and of `make synth`.

`python app.py --help` lists every input with its default.
"""

import sys

import vllm_doks  # noqa: F401  (wires Node 22 for jsii before any jsii library loads)
from vllm_doks._node import load_jsii_in_background

# Node starts and loads while this thread imports the CLI and checks the configuration.
load_jsii_in_background()

from vllm_doks.cli import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run())
