#!/usr/bin/python3
"""The README's first command: the demo runs, balances, and stops cleanly on
Ctrl-C (SIGINT) leaving no httpd behind."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'harness'))
import hbtest  # noqa: E402

DEMO = os.path.join(os.environ.get('HB_SRC_DIR') or
                    os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'),
                    'demo', 'demo.py')


def demo_httpds():
    """pids of httpd processes whose config lies in a demo sandbox."""
    out = subprocess.run(['pgrep', '-f', 'hbt-demo-'], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()} - {os.getpid()}


class DemoTest(hbtest.HbTestCase):

    def test_demo_runs_and_stops_on_ctrl_c(self):
        before = demo_httpds()
        out_path = os.path.join(self.sandbox.path, 'demo.out')
        with open(out_path, 'w') as out:
            proc = subprocess.Popen(['/usr/bin/python3', DEMO], stdout=out,
                                    stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            def text():
                with open(out_path) as f:
                    return f.read()
            # Wait until it has served requests for a few table refreshes.
            hbtest.wait_until(lambda: len(re.findall(r'^heartbeat demo, ', text(), re.M)) >= 3,
                              timeout=60, message='demo printing its table')
            self.assertTrue(demo_httpds() - before, 'demo httpds should be running')
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        output = text()
        self.assertEqual(rc, 0, output)
        self.assertIn('Stopped: every httpd of the demo has exited.', output)
        last = output[output.rindex('heartbeat demo, '):]
        served = [int(n) for n in re.findall(r'^(?:small|medium|large) .* (\d+) +\d+%$',
                                              last, re.M)]
        self.assertEqual(len(served), 3, last)
        self.assertGreater(sum(served), 0, last)
        # The largest origin serves the most, the smallest the least.
        self.assertGreater(served[2], served[0], last)
        self.assertEqual(demo_httpds() - before, set(), 'httpds left running')


if __name__ == '__main__':
    hbtest.main()
