from aion.cli.main import app

app()
