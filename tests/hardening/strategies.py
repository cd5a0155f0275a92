"""Hypothesis strategies for hostile input: unicode edge cases, injection-looking and oversized strings."""

from __future__ import annotations

from hypothesis import strategies as st

INJECTIONS = [
    "' OR 1=1 --",
    '"; DROP TABLE tenants_tenant; --',
    "<script>alert(1)</script>",
    "{{ settings.SECRET_KEY }}",
    "{% debug %}",
    "${jndi:ldap://x}",
    "../../etc/passwd",
    "\r\nSet-Cookie: x=1",
    "%00",
    "aak_00000000_" + "A" * 43,
    "🙂" * 10,
    "\u202e\u200b\ufeff",
    "ǅ\u0301\u0301\u0301",
]
# Text as a transport can carry it: NUL, controls, astral characters; lone surrogates
# only where the transport allows them (they cannot be UTF-8 encoded, see `raw_text`).
text = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(min_size=0, max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=40),
    st.just("x" * 5000),
    st.just("\x00"),
)
# Text that may hold lone surrogates, sent as Django's test client would (surrogatepass
# would be needed to encode them; the client percent-encodes what it can).
raw_text = st.one_of(text, st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=4))


def encodable(value: str) -> str:
    """Replace what UTF-8 cannot carry (lone surrogates) the way a browser would: U+FFFD."""
    return value.encode("utf-8", "replace").decode("utf-8")


def latin1_header(value: str) -> str:
    """HTTP header values are bytes; keep what latin-1 carries, without line breaks."""
    return value.encode("latin-1", "replace").decode("latin-1").replace("\r", "").replace("\n", "")
