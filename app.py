#!/usr/bin/env python3
"""Entry point of both CLIs (cdktf.json and cdk8s.yaml run it) and of `make synth`.

`python app.py --help` lists every input with its default.
"""

import os
import sys

try:
    import vllm_doks  # noqa: F401  (wires Node 22 for jsii before any jsii library loads)
    from vllm_doks import _jsii_loading

    # Node starts and loads on another thread while this one imports the CLI and the libraries
    # and checks the configuration; the synth tells that thread what else to load.
    _jsii_loading.start("constructs")

    from vllm_doks.cli import run
except KeyboardInterrupt:
    # Ctrl-C while Python still imports (a third of a Kubernetes-only synth): nothing has been
    # written yet. The CLI's words (cli.NOTHING_WRITTEN, not importable now: the Ctrl-C test
    # pins both), then quiet, as the CLI is after its own "interrupted" line (cli.run).
    print("interrupted: nothing was written; previous output is unchanged.", file=sys.stderr)
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (open until the process ends)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(run())
