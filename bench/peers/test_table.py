"""Tests for table.py: /usr/bin/python3 -m unittest discover -s bench/peers -p 'test_*.py'"""

import contextlib
import io
import json
import os
import tempfile
import unittest
import unittest.mock

import table


class TableTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_zerotask_report_phases_map_to_modes(self):
        # The shape of bench.Report.WriteJSON: one indented object.
        report = {"broker": "in-process", "phases": [
            {"name": "sync", "tasks": 10, "errors": 0, "tasks_per_sec": 1000.0, "concurrency": 1,
             "p50_us": 900.0, "p99_us": 2000.0},
            {"name": "async", "tasks": 100, "errors": 1, "tasks_per_sec": 50000.0,
             "concurrency": 256, "p50_us": 100.0, "p99_us": 300.0},
            {"name": "notify", "tasks": 500, "errors": 0, "tasks_per_sec": 200000.0,
             "concurrency": 0, "p50_us": 0, "p99_us": 0},
        ]}
        rows, problem = table.read_zerotask(self.write("zt.json", json.dumps(report, indent=2)))
        self.assertIsNone(problem)
        self.assertEqual(sorted(rows), sorted(table.MODES))
        self.assertEqual(rows["with_results"]["tasks_per_s"], 50000.0)
        self.assertEqual(rows["with_results"]["errors"], 1)

    def test_missing_and_empty_inputs(self):
        for path in [os.path.join(self.dir.name, "none"), self.write("empty", "")]:
            rows, problem = table.read_zerotask(path)
            self.assertEqual(rows, {})
            self.assertTrue(problem)
            self.assertEqual(table.read_lines(path), {})

    def test_table_ratio(self):
        zt = self.write("zt.json", json.dumps({"phases": [
            {"name": "async", "tasks": 1, "tasks_per_sec": 3000.0, "p50_us": 10}]}))
        peer = self.write("p.jsonl", "noise\n" + json.dumps(
            {"system": "asynq", "mode": "with_results", "tasks": 5, "errors": 0,
             "tasks_per_s": 1500.0, "p50_us": 2000, "in_flight": 8}) + "\n")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), unittest.mock.patch(
                "sys.argv", ["table.py", "--zerotask", zt, "asynq=" + peer]):
            table.main()
        row = [l for l in out.getvalue().splitlines() if l.startswith("with_results") and "asynq" in l]
        self.assertEqual(len(row), 1)
        self.assertIn("x2.0", row[0])
        self.assertIn("2.00ms", row[0])


if __name__ == "__main__":
    unittest.main()
