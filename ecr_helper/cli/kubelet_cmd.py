"""``docker-credential-xecr kubelet``: the kubelet's image credential provider.

The kubelet runs the plugin with a ``CredentialProviderRequest`` on stdin and
reads the response on stdout; the work is in :mod:`ecr_helper.frontends.kubelet`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "kubelet",
        help="answer a kubelet CredentialProviderRequest on stdin (image credential provider)",
    )
    p.set_defaults(handler=kubelet)


def kubelet(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ecr_helper.frontends import kubelet as core

    out.write(core.run(sys.stdin.buffer, os.environ))
    return 0
