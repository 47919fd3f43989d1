"""Release builds: every artifact of a version, reproducibly, into ``dist/``.

``python -m release`` (run by ``scripts/release.sh``) builds the wheel and
sdist, the self-contained Linux bundle, the ``.deb``, the ``.rpm`` and the OCI
image, then writes ``dist/SHA256SUMS``. Each module owns one artifact;
``reproducible`` owns what makes two builds of one commit byte-identical.
"""
