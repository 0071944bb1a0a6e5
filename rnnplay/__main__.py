"""`python -m rnnplay` runs the CLI."""

if __name__ == "__main__":
    from rnnplay.cli import entry

    entry()
