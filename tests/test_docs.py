"""The README and the pages in docs/ keep their promises.

- Every ```bash and ```python block runs as written, in order, one Markdown file at a time, from an empty folder:
  the python blocks of a file share one interpreter session (one namespace), each bash block runs with
  ``bash -e -o pipefail`` in the same folder, so a file written by one block is there for the next.
- An HTML comment right before a block says how the test treats it:
  ``<!-- test: slow -->`` runs only under ``pytest -m slow`` (the full demo, a long run);
  ``<!-- test: install -->`` is skipped with the reason (it installs scratchae, which CI does itself);
  ``<!-- test: exit N -->`` must end with status N (a check that reports a wrong answer ends with 1);
  ``<!-- test: repository -->`` runs in a copy of the repository, for a command the page says to run from the
  repository's root (``python benchmarks/lesson_lines.py``);
  ``<!-- test: output -->`` on a text block: what the block right before it prints, exactly;
  ``<!-- quote: PATH -->`` is quoted from the file PATH and is checked, not run: each part between lines that are
  only ``...`` appears verbatim in PATH, in order;
  ``<!-- test: import-order -->`` is the package's import order, one level a line (checked with ast, not run).
- The import order written in docs/lesson.md is the real one, for every module of the package.
- Every relative link and image points to a file that exists, and every ``tests/FILE.py::NAME`` named exists.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "scratchae"
FIRST_PAGES = (ROOT / "README.md", ROOT / "README.pt-BR.md")
PAGES = [page for page in (*FIRST_PAGES, *sorted((ROOT / "docs").glob("*.md"))) if page.is_file()]
RUN_LANGUAGES = ("bash", "python")
MARKS = ("slow", "install", "exit", "repository", "output", "import-order")
FENCE = re.compile(r"^(\s*)```\s*([\w.+-]*)\s*$")
MARK = re.compile(r"^<!--\s*(test|quote):\s*(.*?)\s*-->$")

#: Seconds one page's timed blocks may take, all together, on a busy 2-core machine.
PAGE_TIMEOUT_S = 600


@dataclass
class Block:
    page: Path
    line: int  # the line of the opening fence, from 1
    language: str
    code: str
    test: list[str] = field(default_factory=list)  # the words of each <!-- test: ... --> before it
    quote: str | None = None  # the path of <!-- quote: PATH -->

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"

    @property
    def expected_status(self) -> int:
        for mark in self.test:
            if mark.startswith("exit "):
                return int(mark.split()[1])
        return 0

    @property
    def runs(self) -> bool:
        return (self.language in RUN_LANGUAGES and self.quote is None and "install" not in self.test
                and "import-order" not in self.test)


def blocks_of(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the marks of the HTML comments right before it (blank lines allowed)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        language = opening.group(2)
        end = index + 1
        while end < len(lines) and not FENCE.match(lines[end]):
            end += 1
        if end == len(lines):
            raise AssertionError(f"{page.relative_to(ROOT)}:{index + 1}: a code block is never closed")
        code = textwrap.dedent("\n".join(lines[index + 1:end])) + "\n"
        block = Block(page, index + 1, language, code)
        before = index - 1
        while before >= 0 and (not lines[before].strip() or MARK.match(lines[before].strip())):
            mark = MARK.match(lines[before].strip())
            if mark and mark.group(1) == "test":
                block.test.append(mark.group(2))
            elif mark:
                block.quote = mark.group(2)
            before -= 1
        blocks.append(block)
        index = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks_of(page)]


# -- the blocks run as written ----------------------------------------------------------------------------------------

#: Runs one page's blocks in order in the current folder; prints one JSON line per block, stops at the first failure.
RUNNER = r'''
import contextlib, io, json, linecache, os, subprocess, sys, traceback
blocks = json.load(open(sys.argv[1], encoding="utf-8"))
sys.path.insert(0, os.getcwd())  # a module a bash block wrote (my_layers.py) imports as it would in a notebook
namespace = {"__name__": "__main__"}
for block in blocks:
    os.chdir(block["cwd"])
    if block["language"] == "python":
        # the block's lines are kept where tracebacks look for them, as a notebook keeps a cell's
        linecache.cache[block["where"]] = (len(block["code"]), None, block["code"].splitlines(True), block["where"])
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(block["code"], block["where"], "exec"), namespace)
            status, detail = 0, ""
        except SystemExit as stop:
            status, detail = stop.code if isinstance(stop.code, int) else 1, ""
        except BaseException:
            status, detail = 1, traceback.format_exc()
        block["stdout"] = printed.getvalue()
        detail = block["stdout"][-3000:] + detail
    else:
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block["code"]], capture_output=True, text=True)
        status, detail = result.returncode, (result.stdout[-3000:] + result.stderr[-3000:])
        block["stdout"] = result.stdout
    print(json.dumps({"where": block["where"], "status": status, "detail": detail, "stdout": block.get("stdout")}),
          flush=True)
    if status != block["expected"]:
        break
'''


#: What a copy of the repository leaves out: version control, environments, caches and what runs leave behind.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "*.egg-info", "__pycache__", ".pytest_cache", "outputs*", "runs")


def run_page(page: Path, blocks: list[Block], folder: Path) -> dict[str, str]:
    """Run ``blocks`` in order: in the empty ``folder``, or in a copy of the repository beside it for a block marked
    repository. Returns what each block printed on stdout, by its place."""
    clone = folder.parent / f"{folder.name}-repository"
    if any("repository" in block.test for block in blocks):
        shutil.copytree(ROOT, clone, ignore=NOT_COPIED)
    listing = folder.parent / f"{folder.name}-blocks.json"
    listing.write_text(json.dumps([{"where": b.where, "language": b.language, "code": b.code,
                                    "expected": b.expected_status,
                                    "cwd": str(clone if "repository" in b.test else folder)} for b in blocks]),
                       encoding="utf-8")
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("SCRATCHAE_", "PYTEST_"))}
    environment["PATH"] = str(Path(sys.executable).parent) + os.pathsep + environment.get("PATH", "")
    environment["MPLBACKEND"] = "Agg"
    result = subprocess.run([sys.executable, "-c", RUNNER, str(listing)], cwd=folder, capture_output=True, text=True,
                            env=environment, timeout=PAGE_TIMEOUT_S)
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"where"')]
    for block, report in zip(blocks, reports):
        assert report["status"] == block.expected_status, (
            f"{block.where}: the {block.language} block ended with status {report['status']} "
            f"(expected {block.expected_status}):\n{block.code}\n{report['detail']}")
    assert len(reports) == len(blocks), f"{page.name}: the runner stopped early:\n{result.stdout}\n{result.stderr}"
    return {report["where"]: report["stdout"] for report in reports if report["stdout"] is not None}


def check_outputs(page: Path, outputs: dict[str, str]) -> None:
    """A block marked output is what the block right before it printed, as the page claims."""
    blocks = blocks_of(page)
    for before, block in zip(blocks, blocks[1:]):
        if "output" in block.test and before.where in outputs:
            assert outputs[before.where] == block.code, (
                f"{block.where}: the page says the command printed\n{block.code}\nbut it printed\n"
                f"{outputs[before.where]}")


def pages_with_blocks(slow: bool) -> list[Path]:
    return [page for page in PAGES
            if any(block.runs and (slow or "slow" not in block.test) for block in blocks_of(page))]


@pytest.mark.parametrize("page", pages_with_blocks(slow=False), ids=lambda page: page.name)
def test_every_block_runs_as_written_in_order_from_an_empty_folder(page, tmp_path):
    """The timed blocks (those not marked slow) of one page, in order."""
    folder = tmp_path / "empty"
    folder.mkdir()
    check_outputs(page, run_page(page, [b for b in blocks_of(page) if b.runs and "slow" not in b.test], folder))


@pytest.mark.slow
@pytest.mark.parametrize("page", pages_with_blocks(slow=True), ids=lambda page: page.name)
def test_every_block_runs_as_written_in_order_slow_ones_included(page, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    check_outputs(page, run_page(page, [block for block in blocks_of(page) if block.runs], folder))


def test_every_mark_is_one_the_test_knows():
    """A mistyped mark (``<!-- test: slwo -->``) would make a block run, or not, by accident."""
    for block in all_blocks():
        for mark in block.test:
            assert mark.split()[0] in MARKS, f"{block.where}: unknown mark <!-- test: {mark} -->"
            if mark.startswith("exit"):
                assert re.fullmatch(r"exit \d+", mark), f"{block.where}: write <!-- test: exit N -->"


def test_an_output_block_follows_a_block_that_runs():
    for page in PAGES:
        blocks = blocks_of(page)
        for before, block in zip([None, *blocks], blocks):
            if "output" in block.test:
                assert before is not None and before.runs, f"{block.where}: an output follows a block that runs"
                assert block.language == "text", f"{block.where}: an output is a text block"


def test_marks_belong_to_the_block_right_after_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- test: slow -->\n```bash\nscratchae demo\n```\n\ntext\n\n```python\nx = 1\n```\n"
                    "<!-- quote: scratchae/layers.py -->\n\n```python\nclass Dense(Layer):\n```\n", encoding="utf-8")
    slow, plain, quoted = blocks_of(page)
    assert (slow.test, slow.runs, slow.code) == (["slow"], True, "scratchae demo\n")
    assert (plain.test, plain.quote, plain.runs) == ([], None, True)
    assert (quoted.quote, quoted.runs) == ("scratchae/layers.py", False)


def test_a_block_that_fails_fails_its_page_and_the_ones_after_it_do_not_run(tmp_path):
    page = ROOT / "docs" / "a-page.md"  # only named in messages
    blocks = [Block(page, 1, "python", "with open('made.txt', 'w') as f:\n    f.write('x')\n"),
              Block(page, 5, "bash", "test -f made.txt\n"),
              Block(page, 9, "bash", "exit 3\n", test=["exit 3"]),
              Block(page, 13, "python", "import json; json.loads('not json')\n"),
              Block(page, 17, "bash", "touch never.txt\n")]
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(AssertionError, match=r"a-page.md:13: the python block ended with status 1 \(expected 0\)"):
        run_page(page, blocks, folder)
    assert (folder / "made.txt").is_file() and not (folder / "never.txt").exists()


def test_an_output_that_differs_from_what_the_command_prints_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\necho 60 lines\n```\n\n<!-- test: output -->\n```text\n59 lines\n```\n", encoding="utf-8")
    blocks = blocks_of(page)
    outputs = {blocks[0].where: "60 lines\n"}
    with pytest.raises(AssertionError, match="but it printed"):
        check_outputs(page, outputs)
    check_outputs(page, {blocks[0].where: "59 lines\n"})


def test_the_readme_gives_the_line_ci_runs():
    """.ci/run installs and tests with the very line it greps README.md for, so the install blocks are run there."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = re.search(r"^TEST_COMMAND='(.*)'$", ci, re.MULTILINE).group(1)
    readme_blocks = blocks_of(ROOT / "README.md")
    assert any(command in block.code and "install" in block.test for block in readme_blocks)


@pytest.mark.parametrize("block", [b for b in all_blocks() if "install" in b.test], ids=lambda block: block.where)
def test_an_install_block_is_left_to_ci(block):
    assert re.search(r"pip install|python3 -m venv", block.code), (
        f"{block.where}: only a block that installs may be marked install")
    pytest.skip("it installs packages (scratchae, an extra, PyTorch) into an environment; .ci/run installs scratchae "
                "with the README's own line")


def test_the_readme_runs_its_first_autoencoder():
    """The first page has a python block that is run, not only quoted: the first autoencoder."""
    runnable = [b for b in blocks_of(ROOT / "README.md") if b.runs and b.language == "python"]
    assert any("training.fit(" in block.code and "simple_autoencoder(" in block.code for block in runnable)


# -- quotes, the import order, links -----------------------------------------------------------------------------------

def quoted_parts(code: str) -> list[list[str]]:
    """The parts of a quote between gap lines (a line that is only ``...``), each dedented."""
    parts, current = [], []
    for line in code.splitlines():
        if line.strip() == "...":
            parts.append(current)
            current = []
        else:
            current.append(line)
    parts.append(current)
    parts = [textwrap.dedent("\n".join(part)).strip("\n").splitlines() for part in parts]
    return [part for part in parts if part]


def find_part(source: list[str], part: list[str], start: int) -> int:
    """The index of the first line, at or after ``start``, where ``part`` appears verbatim under one indentation;
    -1 if it does not."""
    for index in range(start, len(source) - len(part) + 1):
        first = source[index]
        if not first.endswith(part[0]) or first[:len(first) - len(part[0])].strip():
            continue
        indent = first[:len(first) - len(part[0])]
        if all((source[index + k] == indent + line) if line.strip() else not source[index + k].strip()
               for k, line in enumerate(part)):
            return index
    return -1


def quote_blocks() -> list[Block]:
    return [block for block in all_blocks() if block.quote]


def test_there_are_quotes_to_check():
    quoted = {block.quote for block in quote_blocks()}
    assert {"scratchae/layers.py", "scratchae/training.py", "scratchae/conv.py"} <= quoted


@pytest.mark.parametrize("block", quote_blocks(), ids=lambda block: block.where)
def test_each_quoted_snippet_is_in_the_source_verbatim(block):
    source_file = ROOT / block.quote
    assert source_file.is_file(), f"{block.where}: {block.quote} is not a file of the repository"
    source = source_file.read_text(encoding="utf-8").splitlines()
    position = 0
    for part in quoted_parts(block.code):
        found = find_part(source, part, position)
        assert found >= 0, (f"{block.where}: this part is not in {block.quote} as quoted (mark a gap with a line "
                            "that is only ...):\n" + "\n".join(part))
        position = found + len(part)


def test_the_quote_check_finds_a_line_that_differs():
    source = ["class A:", "    def f(self):", "        return 1  # one", "", "    def g(self):", "        return 2"]
    assert find_part(source, ["def f(self):", "    return 1  # one"], 0) == 1
    assert find_part(source, ["def f(self):", "    return 1"], 0) == -1
    assert find_part(source, ["return 2"], 3) == 5
    assert quoted_parts("def f(self):\n    ...\n    return 1\n") == [["def f(self):"], ["return 1"]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name; the exercise stubs are a learner's files, not modules."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if "stubs" not in path.parts}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, at the top or inside a function (``from scratchae import data``
    is an import of scratchae.data). A package that holds ``name`` is left out: Python loads a package before any
    module in it, so importing it again adds nothing."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: level 1 is the package itself, 2 its parent...
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    return {module for module in found if not (name == module or name.startswith(module + "."))}


def stated_import_levels() -> list[list[str]]:
    """The levels of the import order written in docs/lesson.md: one line each, modules separated by commas."""
    marked = [block for block in blocks_of(ROOT / "docs" / "lesson.md") if "import-order" in block.test]
    assert len(marked) == 1, "docs/lesson.md states the import order in one block marked <!-- test: import-order -->"
    levels = []
    for line in marked[0].code.splitlines():
        text = line.split("#")[0].strip()
        if text:
            levels.append([f"scratchae.{word.strip()}" if word.strip() != "scratchae" else "scratchae"
                           for word in text.split(",")])
    return levels


def import_order_mistakes(levels: list[list[str]], modules: dict[str, Path]) -> list[str]:
    level_of = {name: number for number, level in enumerate(levels) for name in level}
    mistakes = [f"{name} is not in the import order of docs/lesson.md" for name in modules if name not in level_of]
    mistakes += [f"{name} is in docs/lesson.md but is not a module" for name in level_of if name not in modules]
    for name, path in modules.items():
        for imported in sorted(imports_of(name, path, modules)):
            if name in level_of and imported in level_of and level_of[imported] >= level_of[name]:
                mistakes.append(f"{name} (line {level_of[name] + 1}) imports {imported} "
                                f"(line {level_of[imported] + 1}), which is not above it")
    return mistakes


def test_the_import_order_the_docs_state_is_the_real_one():
    assert import_order_mistakes(stated_import_levels(), package_modules()) == []


def test_the_import_order_check_sees_a_module_that_imports_one_below_it():
    modules = package_modules()
    levels = stated_import_levels()
    swapped = [level for level in levels]
    layers_level = next(i for i, level in enumerate(levels) if "scratchae.layers" in level)
    backend_level = next(i for i, level in enumerate(levels) if "scratchae.backend" in level)
    swapped[layers_level], swapped[backend_level] = levels[backend_level], levels[layers_level]
    assert any("imports scratchae.backend" in mistake for mistake in import_order_mistakes(swapped, modules))
    assert import_order_mistakes(levels[1:], modules)  # a module left out is named


def test_imports_are_read_from_every_form_of_import():
    modules = package_modules()
    assert "scratchae.backend" in imports_of("scratchae.layers", modules["scratchae.layers"], modules)
    assert "scratchae.plots" in imports_of("scratchae.training", modules["scratchae.training"], modules)  # in fit
    assert "scratchae.cli.train" in imports_of("scratchae.cli", modules["scratchae.cli"], modules)


def test_an_import_of_the_package_that_holds_a_module_does_not_count(tmp_path):
    module = tmp_path / "child.py"
    module.write_text("def main():\n    from scratchae import exercises, data\n", encoding="utf-8")
    modules = {"scratchae.exercises": module, "scratchae.data": module, "scratchae.exercises.child": module}
    assert imports_of("scratchae.exercises.child", module, modules) == {"scratchae.data"}


#: What docs/lesson.md says the lesson's modules import from outside the lesson.
LESSON = {f"scratchae.{name}" for name in ("layers", "conv", "losses", "optim", "models", "training")}
LESSON_REACHES = {"scratchae.backend", "scratchae.validate", "scratchae.shapes", "scratchae.summary"}
TRAINING_ALSO_REACHES = {"scratchae.threads", "scratchae.plots"}


def test_the_lesson_imports_only_what_docs_lesson_says():
    modules = package_modules()
    for name in sorted(LESSON):
        allowed = LESSON | LESSON_REACHES | (TRAINING_ALSO_REACHES if name == "scratchae.training" else set())
        assert imports_of(name, modules[name], modules) <= allowed, name
    assert "scratchae.threads" in imports_of("scratchae.training", modules["scratchae.training"], modules)


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img\s[^>]*src=\"([^\"]+)\"")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)  # links in code are code
    targets = [first or second for first, second in LINK.findall(text)]
    return [target for target in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", target)]


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    headings = re.findall(r"^#+\s+(.*?)\s*$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_image_points_to_a_file_that_exists(page):
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in heading_anchors(path), f"{page.relative_to(ROOT)} links to {target}: no such heading"


def test_the_link_check_reads_links_and_images():
    sample = ROOT / "docs" / "lesson.md"
    assert relative_links(sample)  # the page links to something
    assert LINK.findall("see [x](docs/a.md) and ![y](b.png \"title\")") == [("docs/a.md", ""), ("b.png", "")]
    assert "two-floors-the-lesson-and-the-engine" in heading_anchors(sample)


def test_the_first_pages_link_each_other_and_every_docs_page():
    assert all(page.is_file() for page in FIRST_PAGES), "README.md and README.pt-BR.md are the first pages"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    portuguese = (ROOT / "README.pt-BR.md").read_text(encoding="utf-8")
    assert "README.pt-BR.md" in relative_links(ROOT / "README.md")
    assert "README.md" in relative_links(ROOT / "README.pt-BR.md")
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"
        assert f"docs/{page.name}" in portuguese, f"README.pt-BR.md does not link docs/{page.name}"


def test_every_test_the_docs_name_exists():
    """A page that says "tests/test_conv.py::test_x checks ties" names a test that is there."""
    named = {match for page in PAGES
             for match in re.findall(r"tests/(test_\w+\.py)::(\w+)", page.read_text(encoding="utf-8"))}
    assert named, "the docs name the tests that hold their claims"
    for file_name, test_name in named:
        source = (ROOT / "tests" / file_name).read_text(encoding="utf-8")
        assert re.search(rf"^def {test_name}\(", source, re.MULTILINE), f"tests/{file_name}::{test_name} is not a test"


def test_the_first_page_is_short():
    """Read in five minutes: at most about 1,200 words of prose, code blocks left out."""
    for page in (ROOT / "README.md", ROOT / "README.pt-BR.md"):
        prose = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        assert len(prose.split()) <= 1200, f"{page.name}: {len(prose.split())} words"
