"""Rewrite the API lists (between <!-- api:PACKAGE --> and <!-- /api -->) of docs/api.md, and of
any other page that holds one (README.md, docs/*.md), from each package's __all__."""
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def block(package: str) -> str:
    names = importlib.import_module(package).__all__
    return f"<!-- api:{package} -->\n" + ", ".join(f"`{n}`" for n in names) + "\n<!-- /api -->"


def rewrite(page: Path) -> None:
    text = page.read_text()
    for package in re.findall(r"<!-- api:([\w.]+) -->", text):
        text = re.sub(rf"<!-- api:{re.escape(package)} -->.*?<!-- /api -->", lambda m, p=package: block(p),
                      text, flags=re.S)
    page.write_text(text)


def main() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if "<!-- api:" in page.read_text():
            rewrite(page)


if __name__ == "__main__":
    main()
