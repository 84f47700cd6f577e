from bnbench.cli import app

app(prog_name="bnbench")
