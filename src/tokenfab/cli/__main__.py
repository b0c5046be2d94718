"""`python -m tokenfab.cli`: the `tokenfab` command."""

from tokenfab.cli import app

if __name__ == "__main__":  # pragma: no cover
    app()
