"""``docker-credential-xecr kubelet``: the kubelet's image credential provider.

The kubelet runs the plugin with a ``CredentialProviderRequest`` on stdin and
reads the response on stdout; the work is in :mod:`ecr_helper.frontends.kubelet`.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "kubelet",
        help="answer a kubelet CredentialProviderRequest on stdin (image credential provider)",
        description="The kubelet's image credential provider: read a "
        "CredentialProviderRequest (JSON) on stdin and print the CredentialProviderResponse "
        "with the registry's token. The kubelet runs it as configured by its "
        "--image-credential-provider-config (see packaging/kubernetes/).",
        epilog="""example:
  echo '{"apiVersion": "credentialprovider.kubelet.k8s.io/v1",
         "kind": "CredentialProviderRequest",
         "image": "111111111111.dkr.ecr.us-east-1.amazonaws.com/app:1"}' |
    docker-credential-xecr kubelet""",
    )
    p.set_defaults(handler=kubelet)


def kubelet(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ecr_helper.cli.streams import stdin_bytes
    from ecr_helper.frontends import kubelet as core

    out.write(core.run(stdin_bytes(), os.environ))
    return 0
