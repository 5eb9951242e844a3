"""The committed report is a rendering of the committed results: every template renders against
its committed JSON record, and the committed ``figures/REPORT.md`` is exactly that rendering."""

import pytest

from pyro_latent.study import experiments_dir, report

ROOT = experiments_dir().parent
TEMPLATES = sorted((ROOT / "experiments" / "templates").glob("*.md"))


def test_every_experiment_has_a_template_and_a_record():
    scripts = {p.stem for p in (ROOT / "experiments").glob("*.py") if not p.stem.startswith("_")}
    assert scripts == {p.stem for p in TEMPLATES}
    records = report.load_records(ROOT / "results")
    assert set(records) == scripts


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_template_renders_against_the_committed_record(template):
    record = report.load_records(ROOT / "results")[template.stem]
    text = report.render_section(record, ROOT / "figures")
    assert text.startswith("## ")
    assert "{{" not in text and "{%" not in text


def test_committed_report_is_the_rendering_of_the_committed_results():
    rendered = report.render_report(ROOT / "results", ROOT / "figures")
    committed = (ROOT / "figures" / "REPORT.md").read_text()
    assert rendered == committed, "run `pyro-latent report` and commit figures/REPORT.md"


def test_every_image_link_of_the_report_resolves():
    text = (ROOT / "figures" / "REPORT.md").read_text()
    links = report._IMAGE.findall(text)
    assert links, "the report shows no figure"
    for link in links:
        assert (ROOT / "figures" / link).is_file(), link
