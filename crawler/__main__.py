"""`python -m crawler` runs the mediawatch CLI."""
from crawler.cli import main

main()
