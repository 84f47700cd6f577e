"""docs/cli.md is every command's --help as the commands print it now (docs/generate_cli.py)."""


def test_cli_reference_is_current(docs_script):
    generate = docs_script("generate_cli")
    assert generate.TARGET.read_text() == generate.render(), "docs/cli.md is stale: python docs/generate_cli.py"


def test_cli_reference_has_every_command(docs_script):
    generate = docs_script("generate_cli")
    text = generate.TARGET.read_text()
    for name in ("run", "compare", "list", "show", "export", "prune", "rm", "init"):
        assert f"## bnbench {name}\n" in text
