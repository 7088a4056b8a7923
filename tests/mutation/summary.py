"""Prints the per-module mutation table of the last `tests/mutation/run.sh` runs (markdown).

Reads `<MUT_WORK>/<module>/results.txt` (`mutmut results --all true`), one folder per module.
A module run with name patterns (`patterns.txt`, targets.tsv's fourth column) counts the
mutants outside them as "not targeted".

With a second folder (an earlier run, e.g. a copy made before tests were added), a mutant
that the later run did not reach ("not checked") keeps its earlier status: tests were only
added in between, so a mutant killed then is still killed.

`--first` prints each module's first run instead (`results-first.txt`, kept by
`MUT_RERUN=1` before it re-runs the survivors with new tests).

Usage: python tests/mutation/summary.py [--first] [MUT_WORK [EARLIER_WORK]]
"""

import collections
import fnmatch
import pathlib
import sys
from typing import Dict, List, Optional

COLUMNS = ('killed', 'survived', 'timeout', 'no tests', 'not checked', 'not targeted')


def _statuses(results: pathlib.Path) -> Dict[str, str]:
    if not results.is_file():
        return {}
    pairs = (line.rsplit(': ', 1) for line in results.read_text().splitlines() if ': ' in line)
    return {name.strip(): status.strip() for name, status in pairs}


def _patterns(path: pathlib.Path) -> List[str]:
    return path.read_text().split() if path.is_file() else []


def main(work: pathlib.Path, earlier: Optional[pathlib.Path], first: bool = False) -> None:
    print('| module | mutants | ' + ' | '.join(COLUMNS) + ' | other |')
    print('| --- ' * (len(COLUMNS) + 3) + '|')
    for folder in sorted(work.iterdir()):
        module = folder / 'module.txt'
        kept = folder / 'results-first.txt'
        statuses = _statuses(kept if first and kept.is_file() else folder / 'results.txt')
        if not (statuses and module.is_file()):
            continue
        before = _statuses(earlier / folder.name / 'results.txt') if earlier else {}
        merged = {name: before.get(name, status) if status == 'not checked' else status
                  for name, status in statuses.items()}
        patterns = _patterns(folder / 'patterns.txt')
        if patterns:
            merged = {name: status if any(fnmatch.fnmatch(name, p) for p in patterns)
                      else 'not targeted' for name, status in merged.items()}
        counts = collections.Counter(merged.values())
        other = sum(n for status, n in counts.items() if status not in COLUMNS)
        cells = ' | '.join(str(counts.get(status, 0)) for status in COLUMNS)
        print(f'| `{module.read_text().strip()}` | {len(merged)} | {cells} | {other} |')


if __name__ == '__main__':
    FIRST = '--first' in sys.argv[1:]
    ARGS = [arg for arg in sys.argv[1:] if arg != '--first']
    main(pathlib.Path(ARGS[0] if ARGS else '/tmp/tfpriv-mutation'),
         pathlib.Path(ARGS[1]) if len(ARGS) > 1 else None, FIRST)
