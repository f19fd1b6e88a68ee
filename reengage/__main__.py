"""``python -m reengage``: the ``reengage`` command, for a checkout without the script."""

from reengage.cli import main

if __name__ == "__main__":
    main()
