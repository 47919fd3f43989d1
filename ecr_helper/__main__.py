"""`python -m ecr_helper` runs the same program as the console scripts."""

from ecr_helper.cli import run

run()
