"""Checking an answer against its sources before anyone sees it.

A small model copies a number from the wrong line, flips a "not", or invents "(manual.pdf, page 9)"
headers in the prompt's format; each is worse than no answer when it carries a citation. So every
sentence of a generated answer is checked against the passages it cites (or, uncited, against every
passage shown): each number, each named term (capitalised words, codes such as E12 or BAT-5200,
quoted text) must occur there, most of its content words must, and its polarity must match the
sentence it leans on (a "not" in one and none in the other is a contradiction, and so is a bare
"Yes" against a negated source). The answer as a whole must also answer: say something the question
does not, and hold a number where the question asks for one. Before that, the text is cleaned:
invented source headers are stripped and repetition loops are cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.lexical import tokenize
from rag.prompting import Passage, strip_markers
from rag.sentences import split_sentences
from rag.types import ClaimCheck

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)*)(?!\w)")
_CODE = re.compile(r"\b(?=[A-Za-z-]*\d)(?=\w*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\b")
_CAPITAL = re.compile(r"\b[A-Z][a-zA-Z]+(?:[-'][A-Za-z]+)*\b")
_QUOTED = re.compile(r"[\"“]([^\"”]{3,60})[\"”]")
_NEGATION = re.compile(
    r"\b(no|not|never|none|nothing|neither|nor|without|cannot|can't|won't|isn't|aren't|doesn't|don't|didn't|"
    r"wasn't|weren't|hasn't|haven't|shouldn't|mustn't|unsupported|unavailable)\b|n't\b",
    re.IGNORECASE,
)
_YES_NO = re.compile(r"^\s*(yes|no)\b", re.IGNORECASE)
_EXTENSIONS = r"pdf|docx?|pptx?|html?|md|txt|csv|eml"
# "(manual.pdf, page 3, section 'Charging')", "(file, page 4)", "[2] (faq.html)": the prompt's own
# source-header format, copied by a small model, usually with pages that do not exist.
_INVENTED_HEADER = re.compile(
    rf"\s*\((?:[^()]*\.(?:{_EXTENSIONS})\b[^()]*|[^()]*\bpages?\s+\d+[^()]*|[^()]*\bsection\s+'[^()]*)\)",
    re.IGNORECASE,
)
_BARE_FILE = re.compile(rf"\b(?:from|in|see)\s+[\w./-]+\.(?:{_EXTENSIONS})\b[,:]?\s*", re.IGNORECASE)
# Sentence-start words that are capitalised by position, not because they name something.
_COMMON_CAPITALS = frozenset(
    "The A An It Its This That These Those There Their They He She We You Your Our If In On At For From To "
    "Yes No Not And Or But After Before When Where Which Who What Why How Each Every All Some Any As By "
    "With Without Please Note Also Then So Only Most More Less I".split()
)
_STARTERS = frozenset(w.lower() for w in _COMMON_CAPITALS)
MIN_WORD_SUPPORT = 0.6  # share of a sentence's content words that must occur in its passages
# Questions whose answer must hold a number ("How many seats...?" answered "Haymarket" is no answer).
_WANTS_NUMBER = re.compile(
    r"^\s*(how (many|much)|what (number|percentage|proportion|share)|(in |by )?what year)\b", re.IGNORECASE
)
# "Which font face and font size does ...", "How many ... by default, and what is the upper bound?": two
# things asked; a short answer without a joiner gives one of them.
_TWO_THINGS = re.compile(
    r"^\s*(?:\w+\s+)?(?:which|what)\s+(?:[\w-]+\s+){1,3}and\s+(?:[\w-]+\s+){1,3}"
    r"(?:does|do|did|is|are|was|were|will|would|can|should|has|have)\b|,?\s+and\s+(?:what|which|how|where|when|who)\b",
    re.IGNORECASE,
)
_JOINED = re.compile(r"[,;/&]|\b(?:and|or|to)\b", re.IGNORECASE)
_ONE_PART_WORDS = 6  # an answer this short with no joiner names one thing
_ASKS_PRICE = re.compile(r"\b(cost|costs|price|prices|fee|fees)\b", re.IGNORECASE)  # a price is a number
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fifteen twenty thirty forty "
    "fifty sixty hundred thousand million billion dozen half single double twice once".split()
)


def strip_invented_headers(text: str) -> tuple[str, int]:
    """Remove copied source headers ("(manual.pdf, page 9)") and "from manual.pdf:"; returns the count."""
    cleaned, n1 = _INVENTED_HEADER.subn("", text)
    cleaned, n2 = _BARE_FILE.subn("", cleaned)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip(), n1 + n2


def _flat(text: str) -> str:
    """Lower case, white space collapsed: how a phrase is looked up in a source."""
    return " ".join(text.lower().split())


def _norm(sentence: str) -> str:
    return _flat(_MARKER.sub("", sentence))


def _reply_phrase(text: str) -> str:
    """A short reply as a phrase to find in its quote: markers and end punctuation aside, flattened."""
    return _flat(strip_markers(text).strip(" .;:,"))


def cut_loops(text: str, max_repeats: int = 2) -> tuple[str, bool]:
    """Cut the answer where it starts repeating itself: at a sentence seen before, or at the
    ``max_repeats + 1``-th occurrence of an 8-word phrase. Returns the text and whether it was cut."""
    sentences = split_sentences(text)
    seen: set[str] = set()
    kept: list[str] = []
    cut = False
    for sentence in sentences:
        key = _norm(sentence)
        if key and key in seen:
            cut = True
            break
        seen.add(key)
        kept.append(sentence.strip())
    out = " ".join(kept)
    words = out.split()
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - 7):
        gram = tuple(w.lower() for w in words[i : i + 8])
        counts[gram] = counts.get(gram, 0) + 1
        if counts[gram] > max_repeats:
            out = " ".join(words[:i]).rstrip(",;: ")
            cut = True
            break
    return out, cut


def numbers(text: str) -> set[str]:
    """Numbers as written, without thousands separators ("5,200" and "5200" are one number)."""
    out = set()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", raw) else raw.replace(",", ".")
        out.add(value.rstrip(".").lstrip("0") or "0")
    return out


def named_terms(sentence: str) -> set[str]:
    """Capitalised words (not the first word of the sentence unless unusual), codes and quoted text."""
    body = _MARKER.sub("", sentence)
    terms = {m.lower() for m in _CODE.findall(body)}
    terms |= {m.lower() for m in _QUOTED.findall(body)}
    for i, m in enumerate(_CAPITAL.finditer(body)):
        word = m.group(0)
        at_start = i == 0 and not body[: m.start()].strip()
        if word in _COMMON_CAPITALS or (at_start and word.lower() in _STARTERS):
            continue
        terms.add(word.lower())
    return terms


# "not only X but also Y", "not just because": additive, not a negation.
_NOT_ONLY = re.compile(r"\bnot\s+(?:only|just|merely|simply|least)\b", re.IGNORECASE)
# Where a sentence's clauses part: a negation in one clause says nothing about the other.
_CLAUSE = re.compile(r"[;:,]\s+|\s+(?:but|while|whereas|although|though|because)\s+", re.IGNORECASE)


def negated(text: str) -> bool:
    return bool(_NEGATION.search(_NOT_ONLY.sub(" ", text)))


def _lean_on(claim_terms: set[str], source_text: str) -> str:
    """The source sentence sharing most content words with the claim (its polarity is compared)."""
    best, best_overlap = "", -1
    for s in split_sentences(source_text):
        overlap = len(claim_terms & set(tokenize(s)))
        if overlap > best_overlap:
            best, best_overlap = s, overlap
    return best


def _closest_clauses(claim_terms: set[str], sentence: str) -> list[str]:
    """The clauses of ``sentence`` sharing most words with the claim (all of them on a tie): "X is
    controversial not just because of Y, but also because its supporters believe Z" backs "they
    believe Z" with no negation."""
    clauses = [c for c in _CLAUSE.split(sentence) if c and c.strip()] or [sentence]
    overlaps = [len(claim_terms & set(tokenize(c))) for c in clauses]
    return [c for c, n in zip(clauses, overlaps, strict=True) if n == max(overlaps)]


def check_sentence(sentence: str, cited: Sequence[Passage], question: str = "") -> ClaimCheck:
    numbers_in = numbers(_MARKER.sub("", sentence))
    source = "\n".join(p.text + ("\n" + p.heading if p.heading else "") for p in cited)
    source_lower = source.lower()
    problems: list[str] = []
    source_numbers = numbers(source)
    for value in sorted(numbers_in - source_numbers):
        problems.append(f"number {value} is not in the cited source")
    for term in sorted(named_terms(sentence)):
        if term not in source_lower and not any(t in source_lower for t in (term.rstrip("s"), term + "s")):
            problems.append(f"'{term}' is not in the cited source")
    body = _MARKER.sub("", sentence)
    terms = set(tokenize(body))
    q_terms = set(tokenize(question))
    own = terms - q_terms  # words restating the question need no support
    if own:
        source_terms = set(tokenize(source))
        support = len(own & source_terms) / len(own)
        if support < MIN_WORD_SUPPORT:
            problems.append(f"only {support:.0%} of its words are in the cited source")
    leaning = _lean_on(terms | q_terms, source)
    yes_no = _YES_NO.match(body)
    if yes_no and len(terms) <= 2:
        # A bare "Yes"/"No": the source sentence closest to the question decides the polarity.
        says_no = yes_no.group(1).lower() == "no"
        if says_no != negated(leaning):
            problems.append(f"'{yes_no.group(1)}' contradicts the source: '{leaning[:80]}'")
    elif len(body.split()) >= 4 and leaning and terms & set(tokenize(leaning)):
        # Whole-sentence claims only: a short span ("Denver Broncos") carries no polarity of its own.
        # On a tie any differing clause counts: a wrong "supported" is worse than a quote.
        differing = [c for c in _closest_clauses(terms, leaning) if negated(c) != negated(body)]
        if differing:
            problems.append(f"negation differs from the source: '{differing[0][:80]}'")
    return ClaimCheck(body.strip(), [p.n for p in cited], not problems, problems)


def answer_problems(text: str, question: str) -> list[str]:
    """Whether the answer as a whole answers the question: it says something the question does not
    already say ("teachers" for "What group can teachers register with?" is supported by any passage
    and answers nothing), a "how many", "what year" or price question gets a number, and a question
    that asks for two things ("Which user and group ...") is not answered with one ("root")."""
    body = strip_markers(text)
    if not question or not body or _YES_NO.match(body):
        return []
    problems = []
    # The question's figures however read: "a=3,6 or 9" is the list 3, 6, 9 as much as the decimal 3.6.
    asked = numbers(question) | {n.lstrip("0") or "0" for n in re.findall(r"\d+", question)}
    if not set(tokenize(body)) - set(tokenize(question)) and not numbers(body) - asked:
        problems.append("it only restates the question")
    words = set(re.findall(r"[a-z]+", body.lower()))
    wants_number = _WANTS_NUMBER.match(question) or _ASKS_PRICE.search(question)
    if wants_number and not numbers(body) and not words & _NUMBER_WORDS:
        problems.append("the question asks for a number and the answer has none")
    one_part = len(body.split()) <= _ONE_PART_WORDS and not _JOINED.search(body) and len(numbers(body)) < 2
    if one_part and _TWO_THINGS.search(question):
        problems.append("the question asks for two things and the answer gives one")
    return problems


def _short_span(text: str) -> str:
    """The answer as a span to look up in its sources ("" for a whole sentence of 9+ words, which
    carries its own context)."""
    body = strip_markers(text).strip(" .;:,")
    return body if len(body.split()) <= 8 else ""


# Words that pick one value among several of the same kind ("the default", "the maximum"): a short answer
# must come from where its source says the same, not from the neighbouring value of the same type.
_QUALIFIERS = (
    frozenset({"default", "defaults", "defaulted"}),
    frozenset({"maximum", "max", "largest", "highest", "limit", "limits"}),
    frozenset({"minimum", "min", "smallest", "lowest"}),
    frozenset({"first"}),
    frozenset({"last"}),
)


_RANGE = re.compile(r"\bbetween\b.+\band\b|\bfrom\b.+\bto\b|\d\s*[-–]\s*\d", re.IGNORECASE)  # states both bounds


_AT_MOST_LEAST = {"at most": _QUALIFIERS[1], "at least": _QUALIFIERS[2]}
_STATES = re.compile(r"\d|\b(?:is|are|was|were|equals?|defaults? to)\b", re.IGNORECASE)  # gives its own value


def _qualifiers(text: str, *, ranges: bool = False) -> list[frozenset[str]]:
    """The qualifier groups ``text`` names; with ``ranges``, a range in a source ("between 512 and 65536")
    names the minimum and the maximum."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    found = [group for group in _QUALIFIERS if words & group]
    found += [g for phrase, g in _AT_MOST_LEAST.items() if phrase in text.lower() and g not in found]
    if ranges and _RANGE.search(text):
        found += [g for g in _QUALIFIERS[1:3] if g not in found]
    return found


def anchor_problems(text: str, passages: Sequence[Passage], question: str) -> list[str]:
    """A short answer must come from where its source speaks of the question's numbers and qualifiers.

    "Who granted Newcastle a new charter in 1589?" answered "Henry II" from "Incorporated first by
    Henry II, the city had a new charter granted by Elizabeth in 1589" passes every word check and is
    wrong; so does "10" for a default from "The default is 5; at most 10 are kept". When the question has
    numbers (a year, an article) or a qualifier (default, maximum, minimum, first, last) and the answer is
    a span found in its cited passages, the clause holding the span, or the one before it ("In 1589, it
    was granted by ...", "By default, it samples 100 points"), must hold the numbers, and it or a
    neighbouring clause without a value of its own one of the qualifiers ("Warsaw, the largest city")."""
    wanted = numbers(question)
    qualifiers = _qualifiers(question)
    body = _short_span(text)
    if not (wanted or qualifiers) or not body:
        return []  # nothing to anchor, or a whole sentence that carries its own context
    cited = [p for p in passages if f"[{p.n}]" in text] or list(passages)
    needle = body.lower()
    found = False
    for p in cited:
        clauses = [
            (k, c)
            for k, sentence in enumerate(split_sentences(p.text))
            for c in _CLAUSE.split(sentence)
            if c and c.strip()
        ]
        for i, (k, clause) in enumerate(clauses):
            if _holds(clause, needle):
                found = True
                before = clauses[i - 1][1] if i else ""
                after = clauses[i + 1][1] if i + 1 < len(clauses) and clauses[i + 1][0] == k else ""
                near = f"{before} {clause}"
                # A qualifier in a neighbouring clause counts only where that clause states no value of its own
                # ("By default, ...", "Warsaw, the largest city"), not a sibling one ("The default is 5; at
                # most 10 are kept", "zstd compresses best; the default is lz4").
                said = _qualifiers(clause, ranges=True) + [
                    g for side in (before, after) if not _STATES.search(side) for g in _qualifiers(side)
                ]
                if wanted <= numbers(near) and (not qualifiers or any(g in said for g in qualifiers)):
                    return []
    if not found:
        return []  # not a verbatim span: the sentence checks decide
    words = set(re.findall(r"[a-z]+", question.lower()))
    asked = sorted(wanted) + [sorted(g & words)[0] for g in qualifiers if g & words]
    return [f"the source gives '{body[:60]}' in a clause without {', '.join(asked)}"]


_MIN_RECOMBINED_WORDS = 3  # "2 years" for "two years" is a paraphrase; "a majority in the Council" is not


def _holds(part: str, needle: str) -> bool:
    """``needle`` in ``part`` as whole words ("A1" is not in "the A19")."""
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", part.lower()) is not None


def recombined_problems(text: str, passages: Sequence[Passage]) -> list[str]:
    """A fragment answer of several words must stand in a shown passage as written: "a majority in the
    Council", stitched from "a majority in Parliament, a minority in the Council", has every word
    supported and says what the source does not. Fragments are what a small model copies out of the
    middle of a sentence (they start lower-case); a sentence of its own ("The warranty lasts 24 months")
    is judged by the sentence checks. On 200 SQuAD questions this refused no right answer."""
    body = _short_span(text)
    if len(body.split()) < _MIN_RECOMBINED_WORDS or not body[:1].islower():
        return []
    needle = _flat(body)
    if any(needle in _flat(p.text) for p in passages):
        return []  # written in a shown passage (another than the cited one: the citation is re-pointed)
    return [f"'{body[:60]}' is not written in the sources"]


def off_topic_problems(text: str, passages: Sequence[Passage], about_question: Sequence[str]) -> list[str]:
    """A short answer found in the passages must come from a sentence about the question.

    ``about_question``: the sentences that best fit the question (the evidence ranking, before the
    answer is known). "What department store is thought to be the first in the world?" answered "John
    Lewis", a store the passage names two sentences away from the one about the first department store,
    passes the word checks and is wrong; the sentence that holds the gold span is among the best three
    for 89% of SQuAD questions."""
    body = _short_span(text)
    if not body or not about_question:
        return []
    needle = body.lower()
    if not any(needle in p.text.lower() for p in passages):
        return []  # not a verbatim span: the sentence checks decide
    if any(needle in sentence.lower() for sentence in about_question):
        return []
    return [f"'{body[:60]}' is not in the sentences about the question"]


def part_of(text: str, quote: str) -> bool:
    """``text`` (markers and end punctuation aside) stands in ``quote`` as written, in whole words (a
    possessive belongs to its word: "Bainbridge's" is the store's name): a reply may replace the evidence
    quote only as a piece of it, never with a claim from elsewhere."""
    body = _reply_phrase(text)
    whole = rf"(?<!\w){re.escape(body)}(?!\w|['’]s\b)"
    return bool(body) and re.search(whole, _flat(quote)) is not None


_JOIN = r"(?:,?\s+and|\s+or)\s+"  # "X and Y", "X, Y, and Z", "X or Y"; not ", or" ("74 per cent, or 260 votes")


def list_item(text: str, quote: str) -> bool:
    """Whether ``text`` stands in ``quote`` only as an item of a list joined by "and" or "or" ("Germany" of
    "spread east through Germany and Scandinavia"): shown instead of the quote, it drops the other items."""
    body, hay = _reply_phrase(text), _flat(quote)
    spans = [m.span() for m in re.finditer(rf"(?<!\w){re.escape(body)}(?!\w)", hay)] if body else []
    joined = [re.match(rf"{_JOIN}\w", hay[b:]) or re.search(rf"\w{_JOIN}$", hay[:a]) for a, b in spans]
    return bool(spans) and all(joined)


def recite(text: str, passages: Sequence[Passage], question: str = "") -> tuple[str, list[ClaimCheck]]:
    """Verify each sentence; one that its cited passage does not back but another shown passage does
    is re-pointed to that passage (small models often cite the neighbour of the right source).
    Returns the text with corrected markers and the final checks."""
    by_n = {p.n: p for p in passages}
    out: list[str] = []
    checks: list[ClaimCheck] = []
    for sentence in split_sentences(text):
        if not _MARKER.sub("", sentence).strip(" .,;:!?"):
            out.append(sentence)
            continue
        cited_ns = [int(n) for m in _MARKER.findall(sentence) for n in m.split(",") if int(n) in by_n]
        cited = [by_n[n] for n in dict.fromkeys(cited_ns)] or list(passages)
        check = check_sentence(sentence, cited, question)
        if not check.supported and cited_ns:
            for p in passages:
                if p.n in cited_ns:
                    continue
                alt = check_sentence(sentence, [p], question)
                if alt.supported:
                    sentence = strip_markers(sentence)
                    tail = sentence[-1] if sentence and sentence[-1] in ".!?" else ""
                    sentence = f"{sentence[:-1] if tail else sentence} [{p.n}]{tail}"
                    check = alt
                    break
        out.append(sentence)
        checks.append(check)
    text = " ".join(out)
    problems = answer_problems(text, question) + anchor_problems(text, passages, question)
    problems += recombined_problems(text, passages)
    if problems:  # true to the sources, but not an answer: never shown as one in verify mode
        checks.append(ClaimCheck(strip_markers(text), [], False, problems))
    return text, checks
