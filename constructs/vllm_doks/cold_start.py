"""How long a new replica takes from "scale up" to "answers", and how the first answer is
checked.

Pure Python (core layer): used by the capacity plan, the Kubernetes constructs and Stack 2 via
Terraform.
"""

from __future__ import annotations

#: Label of a Job that checks the deployed endpoint (the smoke test). Stack 2 via Terraform
#: applies it after every other object and waits for it to complete; the servers never wait
#: for it (unlike the download Job, which they do wait for).
AFTER_APPLY_LABEL = "vllm-doks.io/after-apply"
