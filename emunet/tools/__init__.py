"""Developer tools: ``python -m emunet.tools.fnlen``."""
