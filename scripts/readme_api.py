"""Rewrite the README's API lists (between <!-- api:PACKAGE --> and <!-- /api -->) from __all__."""
import importlib
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def block(package: str) -> str:
    names = importlib.import_module(package).__all__
    return f"<!-- api:{package} -->\n" + ", ".join(f"`{n}`" for n in names) + "\n<!-- /api -->"


def main() -> None:
    text = README.read_text()
    for package in re.findall(r"<!-- api:([\w.]+) -->", text):
        text = re.sub(rf"<!-- api:{re.escape(package)} -->.*?<!-- /api -->", lambda m, p=package: block(p),
                      text, flags=re.S)
    README.write_text(text)


if __name__ == "__main__":
    main()
