"""Prints the per-module mutation table of the last `tests/mutation/run.sh` runs (markdown).

Reads `<MUT_WORK>/<module>/results.txt` (`mutmut results --all true`), one folder per module.
Usage: python tests/mutation/summary.py [MUT_WORK]   (default /tmp/tfpriv-mutation)
"""

import collections
import pathlib
import sys

COLUMNS = ('killed', 'survived', 'timeout', 'no tests', 'not checked')


def main(work: pathlib.Path) -> None:
    print('| module | mutants | ' + ' | '.join(COLUMNS) + ' | other |')
    print('| --- ' * (len(COLUMNS) + 3) + '|')
    for folder in sorted(work.iterdir()):
        results, module = folder / 'results.txt', folder / 'module.txt'
        if not (results.is_file() and module.is_file()):
            continue
        counts = collections.Counter(line.rsplit(': ', 1)[-1].strip()
                                     for line in results.read_text().splitlines() if ': ' in line)
        other = sum(n for status, n in counts.items() if status not in COLUMNS)
        cells = ' | '.join(str(counts.get(status, 0)) for status in COLUMNS)
        print(f'| `{module.read_text().strip()}` | {sum(counts.values())} | {cells} | {other} |')


if __name__ == '__main__':
    main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else '/tmp/tfpriv-mutation'))
