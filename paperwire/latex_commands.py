"""What the text-mode LaTeX commands :mod:`paperwire.latex` knows mean: accents, symbols,
text commands and declarations, and the commands whose argument is kept, dropped or cited.

Pure data, kept apart from the scanner that reads it; a command not named here stays as its
source in the output.
"""

_ACCENTS = {"'": "\u0301", "`": "\u0300", '"': "\u0308", "^": "\u0302", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
            "r": "\u030a", "d": "\u0323", "b": "\u0331", "t": "\u0361"}
# An accent with an empty argument (\'{}) prints the accent itself.
_SPACING = {"'": "\u00b4", "`": "`", '"': "\u00a8", "^": "^", "~": "~", "=": "\u00af", ".": "\u02d9",
            "u": "\u02d8", "v": "\u02c7", "H": "\u02dd", "c": "\u00b8", "k": "\u02db", "r": "\u02da"}

_SYMBOLS = {
    "ss": "ß", "SS": "SS", "o": "ø", "O": "Ø", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å",
    "AA": "Å", "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ", "dh": "ð", "DH": "Ð", "th": "þ", "TH": "Þ",
    "ng": "ŋ", "NG": "Ŋ", "dj": "đ", "DJ": "Đ",
    "ldots": "…", "dots": "…", "textellipsis": "…", "S": "§", "P": "¶", "copyright": "©",
    "textcopyright": "©", "textregistered": "®", "texttrademark": "™", "pounds": "£",
    "textsterling": "£", "euro": "€", "texteuro": "€", "dag": "†", "ddag": "‡", "textdagger": "†",
    "textdaggerdbl": "‡", "textbullet": "•", "textdegree": "°", "textasciitilde": "~",
    "textasciicircum": "^", "textbackslash": "\\", "textbar": "|", "textless": "<", "textgreater": ">",
    "textendash": "–", "textemdash": "—", "textquoteleft": "‘", "textquoteright": "’",
    "textquotedblleft": "“", "textquotedblright": "”", "guillemotleft": "«", "guillemotright": "»",
    "textunderscore": "_", "textbraceleft": "{", "textbraceright": "}", "textperiodcentered": "·",
    "textmu": "µ", "textdollar": "$", "LaTeX": "LaTeX", "TeX": "TeX", "LaTeXe": "LaTeX2e",
    "BibTeX": "BibTeX", "quad": "\u2003", "qquad": "\u2003\u2003", "thinspace": "\u2009",
    "enspace": "\u2002", "enskip": "\u2002", "space": " ", "newline": " ", "linebreak": " ",
    "par": "\n\n", "noindent": "", "indent": "", "centering": "", "hfill": " ", "smallskip": "",
    "medskip": "", "bigskip": "", "relax": "", "null": "", "nobreak": "", "break": " ",
    "clearpage": "", "newpage": "", "protect": "", "xspace": "", "maketitle": "",
}
# \x{...}: the argument is text shown with a tag (HTML) or as is.
_TEXT_CMDS = {"emph": "em", "textit": "em", "textsl": "em", "textbf": "strong", "texttt": "code",
              "textrm": "", "textsf": "", "textup": "", "textmd": "", "textnormal": "", "textsc": "",
              "mbox": "", "hbox": "", "text": "", "underline": "", "uline": "", "textsuperscript": "",
              "textsubscript": "", "foreignlanguage": None}
# {\em ...}: switches that hold until the group ends.
_DECLARATIONS = {"em": "em", "it": "em", "itshape": "em", "sl": "em", "slshape": "em", "bf": "strong",
                 "bfseries": "strong", "tt": "code", "ttfamily": "code", "rm": "", "rmfamily": "",
                 "sf": "", "sffamily": "", "sc": "", "scshape": "", "normalfont": "", "upshape": "",
                 "mdseries": "", "tiny": "", "scriptsize": "", "footnotesize": "", "small": "",
                 "normalsize": "", "large": "", "Large": "", "LARGE": "", "huge": "", "Huge": ""}
_VERBATIM_ARG = {"url", "path", "nolinkurl"}
_CITES = {"cite", "citep", "citet", "citealp", "citealt", "citeauthor", "citeyear", "nocite", "parencite",
          "textcite", "autocite"}
_REFS = {"ref", "eqref", "autoref", "cref", "Cref", "pageref"}
_DROP_ARG = {"vspace", "hspace", "label", "vskip", "hskip", "index", "pagestyle", "thispagestyle"}
_FOOTNOTES = {"footnote", "thanks"}
_CONTROL_SYMBOLS = {"&": "&", "%": "%", "#": "#", "_": "_", "{": "{", "}": "}", " ": " ", "\n": " ",
                    "\t": " ", ",": "\u2009", ";": " ", ":": " ", ">": " ", "!": "", "/": "", "@": "",
                    "-": "", "\\": " ", "|": "‖"}
