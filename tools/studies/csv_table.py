#!/usr/bin/python3
"""Prints columns of a CSV file (the study report's study_*.csv, tools/report/study_report.h) as a
Markdown table. Usage: csv_table.py FILE COLUMN... [--where COLUMN=VALUE] [--top N]"""
import csv
import sys


def main():
    args = sys.argv[1:]
    path, columns, where, top = args[0], [], {}, None
    i = 1
    while i < len(args):
        if args[i] == "--where":
            k, v = args[i + 1].split("=", 1)
            where[k] = v
            i += 2
        elif args[i] == "--top":
            top = int(args[i + 1])
            i += 2
        else:
            columns.append(args[i])
            i += 1
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r.get(k) == v for k, v in where.items())]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows[:top]:
        print("| " + " | ".join(r.get(c, "") or "–" for c in columns) + " |")


if __name__ == "__main__":
    main()
