from extras import pinned


def test_each_optional_extra_resolves_to_its_pinned_packages():
    """The extras' tests install what pyproject.toml pins; a fresh clone has neither onnx nor ray installed."""
    for extra in ("onnx", "ray"):
        assert [requirement.split("==")[0] for requirement in pinned(extra)] == [extra]
