"""Text-mode LaTeX rendering (paperwire.latex): real arXiv abstracts with their
expected renderings, HTML safety, highlights, math left for KaTeX."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from paperwire import latex
from paperwire.latex import snippet_html, to_html, to_text, truncate

ARXIV = ("arxiv-metadata-200.jsonl", "arxiv-metadata-2000.csv", "arxiv-cs-abstracts-1000.csv")


def load_corpus(shared_dir: Path) -> dict[str, dict]:
    """``{"jsonl:<id>" | "csv:<id>" | "cs:<first 40 title chars>": {"title", "abstract"}}``."""
    folder = shared_dir / "data" / "arxiv"
    if not all((folder / f).is_file() for f in ARXIV):
        pytest.skip(f"shared arXiv samples not found in {folder}")
    corpus: dict[str, dict] = {}
    with open(folder / ARXIV[0], encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            corpus["jsonl:" + r["id"]] = {"title": r["title"], "abstract": r["abstract"]}
    with open(folder / ARXIV[1], encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            corpus.setdefault("csv:" + r["id"], {"title": r["title"], "abstract": r["abstract"]})
    with open(folder / ARXIV[2], encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            corpus["cs:" + r["titles"][:40]] = {"title": r["titles"], "abstract": r["summaries"]}
    return corpus


_CACHE: dict[Path, dict] = {}


@pytest.fixture
def corpus(shared_dir) -> dict[str, dict]:
    if shared_dir not in _CACHE:  # read once per run, not once per case
        _CACHE[shared_dir] = load_corpus(shared_dir)
    return _CACHE[shared_dir]


# (record, field, source excerpt, expected HTML, expected plain text). Each excerpt is
# from the real record; the expectation must appear in the rendering of the whole field.
CASES = [
    ('jsonl:0704.0083', 'abstract',
     'about complex saddle-points of the\n{\\em Lorentzian} path integral. They are',
     'about complex saddle-points of the\n<em>Lorentzian</em> path integral. They are',
     'about complex saddle-points of the\nLorentzian path integral. They are'),
    ('csv:704.0322', 'abstract',
     'Alexander B. Medvinsky \\emph{et al} [A. B. Medvinsky, I. A. Tikhonova,',
     'Alexander B. Medvinsky <em>et al</em> [A. B. Medvinsky, I. A. Tikhonova,',
     'Alexander B. Medvinsky et al [A. B. Medvinsky, I. A. Tikhonova,'),
    ('csv:704.0708', 'abstract',
     'second order method for recovering\nthe \\emph{a priori} unknown shape of an inclusion',
     'second order method for recovering\nthe <em>a priori</em> unknown shape of an inclusion',
     'second order method for recovering\nthe a priori unknown shape of an inclusion'),
    ('jsonl:0704.0159', 'abstract',
     'angle-resolved photoemission study of\n1\\textit{T}-TiSe$_{2}$ in both, its room-temperature,',
     'angle-resolved photoemission study of\n1<em>T</em>-TiSe$_{2}$ in both, its room-temperature,',
     'angle-resolved photoemission study of\n1T-TiSe$_{2}$ in both, its room-temperature,'),
    ('csv:704.1155', 'abstract',
     'white in the model of [Phys. Rev. Lett. \\textbf{73}, 3395 (1994)]. The\npotential scientific',
     'white in the model of [Phys. Rev. Lett. <strong>73</strong>, 3395 (1994)]. The\npotential scientific',
     'white in the model of [Phys. Rev. Lett. 73, 3395 (1994)]. The\npotential scientific'),
    ('csv:704.1171', 'abstract',
     'of the one studied in [Phys. Rev. E \\textbf{64},\n041912 (2001)], although externally',
     'of the one studied in [Phys. Rev. E <strong>64</strong>,\n041912 (2001)], although externally',
     'of the one studied in [Phys. Rev. E 64,\n041912 (2001)], although externally'),
    ('jsonl:0704.0094', 'abstract',
     'models which fit the lensing data.\n{\\it Marginally consistent} CDM models in',
     'models which fit the lensing data.\n<em>Marginally consistent</em> CDM models in',
     'models which fit the lensing data.\nMarginally consistent CDM models in'),
    ('jsonl:0704.0114', 'abstract',
     '(introduced by A.W. Sandvik,\nPhys. Rev. Lett. {\\bf 98}, 227202 (2007).)\n  This model undergoes',
     '(introduced by A.W. Sandvik,\nPhys. Rev. Lett. <strong>98</strong>, 227202 (2007).)\n  This model undergoes',
     '(introduced by A.W. Sandvik,\nPhys. Rev. Lett. 98, 227202 (2007).)\n  This model undergoes'),
    ('jsonl:0704.0146', 'abstract',
     'circulation $\\Gamma=\\oint {\\rm d}{\\bf\nr}\\cdot{\\bf v}({\\bf r})$ about the vortex, where',
     'circulation $\\Gamma=\\oint {\\rm d}{\\bf\nr}\\cdot{\\bf v}({\\bf r})$ about the vortex, where',
     'circulation $\\Gamma=\\oint {\\rm d}{\\bf\nr}\\cdot{\\bf v}({\\bf r})$ about the vortex, where'),
    ('jsonl:0704.0080', 'abstract',
     "feature does not derive from a literal\n``universality'' of the GCMF turnover",
     'feature does not derive from a literal\n“universality” of the GCMF turnover',
     'feature does not derive from a literal\n“universality” of the GCMF turnover'),
    ('jsonl:0704.0145', 'abstract',
     "Dirac observables) and there is also an ``improved'' quantization of the\nHamiltonian",
     'Dirac observables) and there is also an “improved” quantization of the\nHamiltonian',
     'Dirac observables) and there is also an “improved” quantization of the\nHamiltonian'),
    ('jsonl:0704.0010', 'abstract',
     "defined by means of semicubes, and Djokovi\\'{c}'s and Winkler's relations play\nan",
     'defined by means of semicubes, and Djoković’s and Winkler’s relations play\nan',
     'defined by means of semicubes, and Djoković’s and Winkler’s relations play\nan'),
    ('jsonl:0704.0028', 'abstract',
     "inequality to improve the lower bound of R\\'ev\\'esz and Sarantopoulos on the\nnorm",
     'inequality to improve the lower bound of Révész and Sarantopoulos on the\nnorm',
     'inequality to improve the lower bound of Révész and Sarantopoulos on the\nnorm'),
    ('jsonl:0704.0019', 'title',
     'the contact process based on\n  the Gr\\"obner basis',
     'the contact process based on\n  the Gröbner basis',
     'the contact process based on\n  the Gröbner basis'),
    ('jsonl:0704.0073', 'abstract',
     'theorem is\nformulated for a compact K\\"ahler manifold, but the proof uses the',
     'theorem is\nformulated for a compact Kähler manifold, but the proof uses the',
     'theorem is\nformulated for a compact Kähler manifold, but the proof uses the'),
    ('jsonl:0704.0039', 'abstract',
     "scattering. Recently, Yndur\\'ain,\nusing an Omn\\`es representation of the null isospin(I)",
     'scattering. Recently, Ynduráin,\nusing an Omnès representation of the null isospin(I)',
     'scattering. Recently, Ynduráin,\nusing an Omnès representation of the null isospin(I)'),
    ('csv:704.0796', 'abstract',
     'consider a quantum system evolving by It\\^o stochastic and by jump process\nSchr\\"odinger',
     'consider a quantum system evolving by Itô stochastic and by jump process\nSchrödinger',
     'consider a quantum system evolving by Itô stochastic and by jump process\nSchrödinger'),
    ('csv:704.0926', 'abstract',
     'incremental stability properties of It\\^o stochastic\ndynamical systems. Specifically,',
     'incremental stability properties of Itô stochastic\ndynamical systems. Specifically,',
     'incremental stability properties of Itô stochastic\ndynamical systems. Specifically,'),
    ('csv:704.0224', 'abstract',
     'distinguish conical flow from simple\nQCD-\\v{C}erenkov radiation. An important aspect',
     'distinguish conical flow from simple\nQCD-Čerenkov radiation. An important aspect',
     'distinguish conical flow from simple\nQCD-Čerenkov radiation. An important aspect'),
    ('csv:704.1066', 'abstract',
     'revisit the traditional Ladygenskaya--Babu\\v{s}ka--Brezzi (LBB) or\ninf--sup condition',
     'revisit the traditional Ladygenskaya–Babuška–Brezzi (LBB) or\ninf–sup condition',
     'revisit the traditional Ladygenskaya–Babuška–Brezzi (LBB) or\ninf–sup condition'),
    ('csv:704.0452', 'abstract',
     'the flux of the Ne X line at 12.14 \\AA\\\nwas about $5 \\times 10^{-3}$ photons',
     'the flux of the Ne X line at 12.14 Å was about $5 \\times 10^{-3}$ photons',
     'the flux of the Ne X line at 12.14 Å was about $5 \\times 10^{-3}$ photons'),
    ('csv:704.0529', 'abstract',
     'extract a coherence length of\n31-40 {\\AA}, in agreement with the value derived',
     'extract a coherence length of\n31-40 Å, in agreement with the value derived',
     'extract a coherence length of\n31-40 Å, in agreement with the value derived'),
    ('cs:Improving Post Training Neural Quantizat', 'abstract',
     'less than 1\\%\naccuracy degradation --- with 4-bit weights and activations',
     'less than 1%\naccuracy degradation — with 4-bit weights and activations',
     'less than 1%\naccuracy degradation — with 4-bit weights and activations'),
    ('cs:Scene Flow from Point Clouds with or wit', 'abstract',
     'can be used with or\nwithout learning---as a self-supervisory signal to learn',
     'can be used with or\nwithout learning—as a self-supervisory signal to learn',
     'can be used with or\nwithout learning—as a self-supervisory signal to learn'),
    ('jsonl:0704.0022', 'abstract',
     'integration\nschemes based on Castell--Gaines methods. These involve using',
     'integration\nschemes based on Castell–Gaines methods. These involve using',
     'integration\nschemes based on Castell–Gaines methods. These involve using'),
    ('jsonl:0704.0026', 'abstract',
     'as N approaches infinite, fractals -- and thereby,scale-free\nnetworks. Any',
     'as N approaches infinite, fractals – and thereby,scale-free\nnetworks. Any',
     'as N approaches infinite, fractals – and thereby,scale-free\nnetworks. Any'),
    ('cs:When Vision Transformers Outperform ResN', 'abstract',
     'contrastive, and transfer learning (e.g., +5.3\\% and\n+11.0\\% top-1 accuracy on ImageNet',
     'contrastive, and transfer learning (e.g., +5.3% and\n+11.0% top-1 accuracy on ImageNet',
     'contrastive, and transfer learning (e.g., +5.3% and\n+11.0% top-1 accuracy on ImageNet'),
    ('cs:Combining Supervised and Un-supervised L', 'abstract',
     'prediction accuracy reached at 88.3$\\%$ IOU and 93.6$\\%$\nprecision, outperforming',
     'prediction accuracy reached at 88.3$\\%$ IOU and 93.6$\\%$\nprecision, outperforming',
     'prediction accuracy reached at 88.3$\\%$ IOU and 93.6$\\%$\nprecision, outperforming'),
    ('cs:Temporally Abstract Partial Models', 'abstract',
     'learning,\noption models (Sutton, Precup \\& Singh, 1999; Precup, 2000) provide',
     'learning,\noption models (Sutton, Precup &amp; Singh, 1999; Precup, 2000) provide',
     'learning,\noption models (Sutton, Precup & Singh, 1999; Precup, 2000) provide'),
    ('cs:Monocular Camera Localization in Prior L', 'abstract',
     'visual and visual-inertial odometry\n(VO\\&VIO) techniques are well-developed for',
     'visual and visual-inertial odometry\n(VO&amp;VIO) techniques are well-developed for',
     'visual and visual-inertial odometry\n(VO&VIO) techniques are well-developed for'),
    ('jsonl:0704.0041', 'abstract',
     'the quantum\ndouble torus defined in \\cite{hajac} as the universal quantum group',
     'the quantum\ndouble torus defined in [hajac] as the universal quantum group',
     'the quantum\ndouble torus defined in [hajac] as the universal quantum group'),
    ('jsonl:0704.0111', 'abstract',
     'of the proof of the remark made in \\cite{G2} that the Chern\ncharacters of the',
     'of the proof of the remark made in [G2] that the Chern\ncharacters of the',
     'of the proof of the remark made in [G2] that the Chern\ncharacters of the'),
    ('csv:704.1158', 'abstract',
     'users of an interactive website -- \\texttt{digg.com} -- devoted to\nthousands of',
     'users of an interactive website – <code>digg.com</code> – devoted to\nthousands of',
     'users of an interactive website – digg.com – devoted to\nthousands of'),
    ('cs:Balancing thermal comfort datasets: We G', 'abstract',
     'Generative Adversarial Network (GAN), $\\texttt{comfortGAN}$, to\naddress this imbalance',
     'Generative Adversarial Network (GAN), $\\texttt{comfortGAN}$, to\naddress this imbalance',
     'Generative Adversarial Network (GAN), $\\texttt{comfortGAN}$, to\naddress this imbalance'),
    ('csv:704.1226', 'abstract',
     'hydrogen outside\nthe cosmological H {\\sc ii} regions enveloping QSOs and other',
     'hydrogen outside\nthe cosmological H ii regions enveloping QSOs and other',
     'hydrogen outside\nthe cosmological H ii regions enveloping QSOs and other'),
    ('cs:Using massive health insurance claims da', 'abstract',
     'patients who have annual costs above\n$\\$250,000$ and who represent just 0.16%',
     'patients who have annual costs above\n$\\$250,000$ and who represent just 0.16%',
     'patients who have annual costs above\n$\\$250,000$ and who represent just 0.16%'),
    ('jsonl:0704.0128', 'abstract',
     'The light curve repository website\n(http://www.swift.ac.uk/xrt_curves) contains',
     'The light curve repository website\n(http://www.swift.ac.uk/xrt_curves) contains',
     'The light curve repository website\n(http://www.swift.ac.uk/xrt_curves) contains'),
    ('jsonl:0704.0155', 'abstract',
     'available on the World Wide Web at\nhttp://www.sron.rug.nl/~vdtak/radex/index.shtml',
     'available on the World Wide Web at\nhttp://www.sron.rug.nl/~vdtak/radex/index.shtml',
     'available on the World Wide Web at\nhttp://www.sron.rug.nl/~vdtak/radex/index.shtml'),
    ('csv:704.1098', 'abstract',
     'the intermediate-mass (IM)\nrange (M$_*$$\\sim$2--8 M$_\\odot$). High spatial resolution',
     'the intermediate-mass (IM)\nrange (M$_*$$\\sim$2–8 M$_\\odot$). High spatial resolution',
     'the intermediate-mass (IM)\nrange (M$_*$$\\sim$2–8 M$_\\odot$). High spatial resolution'),
    ('csv:704.169', 'abstract',
     'polynomial $P(z)$ $($of degree $d=4$$)$, we have $\\Delta^m\nP^{m+1}(z)=0$',
     'polynomial $P(z)$ $($of degree $d=4$$)$, we have $\\Delta^m\nP^{m+1}(z)=0$',
     'polynomial $P(z)$ $($of degree $d=4$$)$, we have $\\Delta^m\nP^{m+1}(z)=0$'),
    ('jsonl:0704.0017', 'abstract',
     'was modulated with velocities near ~500-600\nkm/s. These velocities are consistent',
     'was modulated with velocities near ~500-600\nkm/s. These velocities are consistent',
     'was modulated with velocities near ~500-600\nkm/s. These velocities are consistent'),
    ('jsonl:0704.0027', 'abstract',
     '(-,1) -> 0, at a magnetic field B_0 ~ 30 T. It can be used to measure the',
     '(-,1) -&gt; 0, at a magnetic field B_0 ~ 30 T. It can be used to measure the',
     '(-,1) -> 0, at a magnetic field B_0 ~ 30 T. It can be used to measure the'),
    ('csv:704.1939', 'title',
     'su(2) and su(1,1) algebra using\n  Schr{\\"o}dinger-Robertson uncertainty relation',
     'su(2) and su(1,1) algebra using\n  Schrödinger-Robertson uncertainty relation',
     'su(2) and su(1,1) algebra using\n  Schrödinger-Robertson uncertainty relation'),
    ('csv:704.0808', 'abstract',
     'field. It is a\nconjecture, due to E.\\thinspace M.\\thinspace Stein, that if $ v$ is',
     'field. It is a\nconjecture, due to E.\u2009M.\u2009Stein, that if $ v$ is',
     'field. It is a\nconjecture, due to E.\u2009M.\u2009Stein, that if $ v$ is'),
    ('csv:704.0551', 'abstract',
     'most complete reference of papers on GP\\@. In\naddition to locating publications,',
     'most complete reference of papers on GP. In\naddition to locating publications,',
     'most complete reference of papers on GP. In\naddition to locating publications,'),
    ('csv:704.1986', 'abstract',
     'The $\\pi$-exterior derivative ${\\o}d$, which is the Finslerian generalization',
     'The $\\pi$-exterior derivative ${\\o}d$, which is the Finslerian generalization',
     'The $\\pi$-exterior derivative ${\\o}d$, which is the Finslerian generalization'),
    ('jsonl:0704.0003', 'abstract',
     "years ago, which is far beyond the Roche's limit. The result suggests\nthat the",
     'years ago, which is far beyond the Roche’s limit. The result suggests\nthat the',
     'years ago, which is far beyond the Roche’s limit. The result suggests\nthat the'),
    ('jsonl:0704.0009', 'abstract',
     "bona fide young stellar objects, YSO's, from the\nextensive background contamination",
     'bona fide young stellar objects, YSO’s, from the\nextensive background contamination',
     'bona fide young stellar objects, YSO’s, from the\nextensive background contamination'),
    ('jsonl:0704.0049', 'abstract',
     'classify smooth\nFano d-polytopes for d<=7. There are 7622 isomorphism classes',
     'classify smooth\nFano d-polytopes for d&lt;=7. There are 7622 isomorphism classes',
     'classify smooth\nFano d-polytopes for d<=7. There are 7622 isomorphism classes'),
    ('jsonl:0704.0054', 'abstract',
     'Hardy-Lorentz spaces $H^{p,q}(R^n)$, with\n$0<p\\le 1$, $0<q\\le \\infty$. We discuss',
     'Hardy-Lorentz spaces $H^{p,q}(R^n)$, with\n$0&lt;p\\le 1$, $0&lt;q\\le \\infty$. We discuss',
     'Hardy-Lorentz spaces $H^{p,q}(R^n)$, with\n$0<p\\le 1$, $0<q\\le \\infty$. We discuss'),
    ('cs:Representation Learning with Weighted In', 'abstract',
     'We propose $\\textit{weighted inner product similarity}$',
     'We propose $\\textit{weighted inner product similarity}$',
     'We propose $\\textit{weighted inner product similarity}$'),
    ('cs:A Simple Fine-tuning Is All You Need: To', 'abstract',
     'adversarial fine-tuning approach based on a $\\textit{slow start, fast decay}$\nlearning rate',
     'adversarial fine-tuning approach based on a $\\textit{slow start, fast decay}$\nlearning rate',
     'adversarial fine-tuning approach based on a $\\textit{slow start, fast decay}$\nlearning rate'),
]


@pytest.mark.parametrize("key,field,source,want_html,want_text", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_real_abstracts_render_as_expected(corpus, key, field, source, want_html, want_text):
    raw = corpus[key][field]
    assert source in raw, "the case no longer matches its record"
    assert want_html in to_html(raw)
    assert want_text in to_text(raw)


def test_cases_cover_thirty_distinct_abstracts():
    assert len({c[0].split(":", 1)[1] for c in CASES}) >= 30


class _Tags(HTMLParser):
    """Records the tags of an HTML fragment, failing on anything not allowed or not nested."""

    ALLOWED = {"em", "strong", "code", "mark", "span"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.ALLOWED or (tag == "span" and attrs != [("class", "nomath")]) or (
                tag != "span" and attrs):
            self.errors.append(f"tag {tag} {attrs}")
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"bad nesting at </{tag}>")

    def handle_data(self, data):
        self.text.append(data)


def _check_html(out: str) -> _Tags:
    p = _Tags()
    p.feed(out)
    p.close()
    assert p.errors == [] and p.stack == [], (p.errors, p.stack, out[:300])
    return p


def test_whole_corpus_is_safe_nested_and_keeps_math_verbatim(corpus):
    """Every title and abstract: only our tags, properly nested; every math region KaTeX
    would typeset comes out byte for byte (so the page typesets what the author wrote)."""
    n = 0
    for rec in corpus.values():
        for raw in (rec["title"], rec["abstract"]):
            out = to_html(raw)
            p = _check_html(out)
            text = "".join(p.text)
            for a, b in latex.math_spans(raw):
                assert raw[a:b] in text, raw[a:b]
            assert "<" not in out.replace("<em>", "").replace("</em>", "").replace("<strong>", "").replace(
                "</strong>", "").replace("<code>", "").replace("</code>", "").replace(
                '<span class="nomath">', "").replace("</span>", "")
            n += 1
    assert n >= 6000


def test_hostile_html_is_text():
    out = to_html('<script>alert(1)</script> {\\em <img src=x onerror=alert(1)>} "q" & $a<b$')
    assert out == ('&lt;script&gt;alert(1)&lt;/script&gt; <em>&lt;img src=x onerror=alert(1)&gt;</em> '
                   '&quot;q&quot; &amp; $a&lt;b$')
    assert to_text("<b>x</b> & y") == "<b>x</b> & y"


@pytest.mark.parametrize("src,html,text", [
    (r"{\em if} and \emph{only} \textit{if}", "<em>if</em> and <em>only</em> <em>if</em>", "if and only if"),
    (r"\textbf{Bold} {\bf b} \texttt{code}", "<strong>Bold</strong> <strong>b</strong> <code>code</code>",
     "Bold b code"),
    (r"{\it a {\bf b} c} d", "<em>a <strong>b</strong> c</em> d", "a b c d"),
    (r"\it all the rest", "<em>all the rest</em>", "all the rest"),
    ("``quoted'' and `single' it's", "“quoted” and ‘single’ it’s", "“quoted” and ‘single’ it’s"),
    (r"\'e \`e \^e \"o \~n {\"a} \c{c} \v{s} \u{g} \H{o} \={a} \.{z} \k{a} \r{u} {\ss} {\o} {\O} {\ae} \AA{} \l\ \i",
     "é è ê ö ñ ä ç š ğ ő ā ż ą ů ß ø Ø æ Å ł ı", "é è ê ö ñ ä ç š ğ ő ā ż ą ů ß ø Ø æ Å ł ı"),
    (r"\'{\i}, Stra\ss e, {\'E}cole, \c c", "í, Straße, École, ç", "í, Straße, École, ç"),
    ("1--2, a---b, x - y, -----", "1–2, a—b, x - y, -----", "1–2, a—b, x - y, -----"),
    (r"50\% \& 3\# a\_b \{x\}", "50% &amp; 3# a_b {x}", "50% & 3# a_b {x}"),
    (r"costs \$5 and \$10", 'costs <span class="nomath">$</span>5 and <span class="nomath">$</span>10',
     "costs $5 and $10"),
    ("et~al., E.~M.~Stein, Fig.~3, Section~2", "et\u00a0al., E.\u00a0M.\u00a0Stein, Fig.\u00a03, Section\u00a02",
     "et\u00a0al., E.\u00a0M.\u00a0Stein, Fig.\u00a03, Section\u00a02"),
    ("z~2.56, ~500 km/s, B ~ 30 T", "z~2.56, ~500 km/s, B ~ 30 T", "z~2.56, ~500 km/s, B ~ 30 T"),
    (r"in \cite{a,b} and Eq.~\eqref{e1}, \url{http://x.org/~a--b}", "in [a,b] and Eq.\u00a0(e1), http://x.org/~a--b",
     "in [a,b] and Eq.\u00a0(e1), http://x.org/~a--b"),
    ("see http://www.example.org/~me/a--b.html -- ok", "see http://www.example.org/~me/a--b.html – ok",
     "see http://www.example.org/~me/a--b.html – ok"),
    (r"\alpha and \mathcal{S} stay", r"\alpha and \mathcal{S} stay", r"\alpha and \mathcal{S} stay"),
    ("V_{gas}=4200 and cm^{-3}", "V_{gas}=4200 and cm^{-3}", "V_{gas}=4200 and cm^{-3}"),
    (r"a \ldots b, \LaTeX\ rocks, GP\@.", "a …b, LaTeX rocks, GP.", "a …b, LaTeX rocks, GP."),
    (r"$x--y$ and $$\frac{a}{b}$$ and \(c'\) and \[d``\]", r"$x--y$ and $$\frac{a}{b}$$ and \(c&#x27;\) and \[d``\]",
     r"$x--y$ and $$\frac{a}{b}$$ and \(c'\) and \[d``\]"),
    (r"{\em text $\{x\}$ more}", r"<em>text $\{x\}$ more</em>", r"text $\{x\}$ more"),
    ("unclosed {\\em group and $lone", 'unclosed <em>group and <span class="nomath">$</span>lone</em>',
     "unclosed group and $lone"),
    ("stray } brace }", "stray  brace ", "stray  brace "),
    ("\\", "\\", "\\"),
    (r"\'{ab} \~", r"\&#x27;ab \~", r"\'ab \~"),
])
def test_constructs(src, html, text):
    assert to_html(src) == html
    assert to_text(src) == text
    _check_html(to_html(src))


def test_undefined_macro_math_is_left_for_katex():
    assert to_html(r"A $\JJ$ term") == r"A $\JJ$ term"


def test_snippet_highlights_survive_latex_and_stay_nested():
    out = snippet_html("…of {\\em the <mark>quark</mark> mass} and <mark>Bal\\'azs</mark>")
    assert out == "…of <em>the <mark>quark</mark> mass</em> and <mark>Balázs</mark>"
    # a highlight inside math would split KaTeX's text node: dropped there
    assert snippet_html("with $<mark>m</mark>_q$ now") == "with $m_q$ now"
    # a highlight crossing the end of a group is closed and reopened around it
    out = snippet_html("{\\em a <mark>b} c</mark> d")
    assert out == "<em>a <mark>b</mark></em><mark> c</mark> d"
    _check_html(out)
    # escaped text stays text; producer-escaped or not, nothing is double-escaped
    assert snippet_html("x &lt;b&gt; &amp;amp; <mark>y</mark>") == "x &lt;b&gt; &amp;amp; <mark>y</mark>"
    assert snippet_html("&lt;mark&gt;no&lt;/mark&gt;") == "&lt;mark&gt;no&lt;/mark&gt;"
    assert snippet_html("<mark>open only") == "<mark>open only</mark>"
    assert snippet_html("") == ""


def test_truncate_cuts_outside_math():
    text = "We study $a + b + c + d$ here and there"
    assert truncate(text, 12) == "We study"
    assert truncate(text, 30) == "We study $a + b + c + d$ here"
    assert truncate("short", 10) == "short"
    assert truncate("$aaaaaaaaaaaaaaaa$", 5) == "$aaaa"


def test_none_and_empty():
    assert to_html(None) == "" and to_text(None) == "" and to_html("") == ""


def test_input_private_use_marks_cannot_forge_highlights():
    assert to_html("a\ue000b\ue001c") == "abc"
    assert "<mark>" not in snippet_html("a\ue000b")


def test_long_and_nested_input_is_linear_and_safe():
    deep = "{" * 5000 + "x" + "}" * 5000
    assert to_text(deep) == "x"
    big = ("{\\em a} $x$ \\'e -- " * 20000)
    out = to_html(big)
    assert out.count("<em>") == 20000
    _check_html(out)


def test_math_spans_follow_katex():
    assert latex.math_spans(r"a $x$ b $$y$$ c \(z\) d \[w\]") == [(2, 5), (8, 13), (16, 21), (24, 29)]
    assert latex.math_spans(r"\$5 and $x$") == [(8, 11)]
    assert latex.math_spans("$ {$} $") == [(0, 7)]  # KaTeX: the closing $ only counts at brace depth 0
    assert latex.math_spans("$ {$} $", braces=False) == [(0, 4)]
    assert latex.math_spans("lone $ dollar") == []


@pytest.mark.parametrize("snippet", [
    "<mark>\\bf x</mark> y", "<mark>a {\\em b</mark> c} d", "{\\it a <mark>b} c \\bf d</mark> e",
    "<mark>\\footnote{x</mark>} \\textbf{<mark>y}</mark>", "<mark>}{}{\\em</mark>", "\\emph{<mark>x",
])
def test_highlights_never_cross_other_tags(snippet):
    out = snippet_html(snippet)
    _check_html(out)
    assert "<mark>" in out
