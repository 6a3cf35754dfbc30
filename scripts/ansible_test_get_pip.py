# pip bootstrap for ansible-test where ci-files.testing.ansible.com is unreachable:
# the interpreter's own ensurepip, then the wanted pip from the package index.
import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
wanted = [a for a in sys.argv[1:] if a.startswith("pip")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                      + (wanted or ["pip==24.2"]))
