#!/usr/bin/env python3
"""Turn the functions a run entered (scripts/trace-functions.py) into lld's --symbol-ordering-file.

    symbol-order.py MAP TRACE > scripts/symbol-order.txt

MAP is the map file of a release link (`-Xlinker -Map=FILE -Xlinker --no-demangle`). Kept, in
this order:
  1. the functions the run entered, in the order it first entered them;
  2. every other function of the package's own objects (.build/…/release/*.build/*.o), in link
     order.
Only names that sit in a section of their own are listed (per-function sections: the package is
compiled with -function-sections, the Swift runtime's C++ and part of libswiftCore are built so):
a name in a shared plain `.text` would drag that whole section (libswiftCore's 1.5 MiB) along.
A name defined in several objects (a local outlined copy, a metadata accessor) counts as plain if
one of them is in a plain `.text`.
Why 2: the compiler also emits small functions without a symbol (`.text..L__unnamed_N`) which
the runtime calls at start-up. An ordering file cannot name them, and lld leaves every unlisted
section in link order after the listed ones; listing the rest of the package's functions packs
those unnamed ones together right after it instead of leaving each in a page of cold code.
"""
import sys


def read_map(path):
    """(movable names in link order, names in plain .text, name -> is from the package)"""
    movable, pinned, ours = [], set(), {}
    col = out = sec = None
    own = False
    for line in open(path, errors="replace"):
        if col is None:
            col = line.index("Out")
            continue
        field = line[col:].rstrip("\n")
        if field and not field.startswith(" "):
            out = field.split()[0]
        elif out != ".text":
            continue
        elif field.startswith(" " * 16):
            if sec is None:
                continue
            name = field.strip()
            if sec == ".text":
                pinned.add(name)
            else:
                movable.append(name)
                ours[name] = ours.get(name, False) or own
        elif field.startswith(" " * 8):
            s = field.strip()
            sec = s.rsplit(":(", 1)[1].rstrip(")") if ":(" in s else None
            own = "/release/" in s and ".build/" in s.split(":(", 1)[0]
    return movable, pinned, ours


def main():
    movable, pinned, ours = read_map(sys.argv[1])
    ok = set(movable) - pinned
    seen, hot, cold = set(), [], []
    for line in open(sys.argv[2]):
        name = line.strip()
        if name in ok and name not in seen:
            seen.add(name)
            hot.append(name)
    for name in movable:
        if name in ok and name not in seen and ours.get(name):
            seen.add(name)
            cold.append(name)
    print(f"{len(hot)} functions entered, {len(cold)} other functions of the package", file=sys.stderr)
    sys.stdout.write("".join(n + "\n" for n in hot + cold))


if __name__ == "__main__":
    main()
