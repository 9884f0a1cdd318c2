"""``python -m abm``: the ``abm`` program (the same as the ``abm`` command, :func:`abm.cli.entry`)."""

if __name__ == "__main__":
    from abm.cli import entry

    entry()
