from rnnplay.cli import entry

entry()
