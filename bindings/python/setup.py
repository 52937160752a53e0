"""The optional C extension (scardmanage._fast); everything else is in pyproject.toml.

Without a C compiler or Python's headers the build of the extension fails quietly
(optional=True) and the package installs as pure Python: it then calls the library through
ctypes only, with the same API and the same errors.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("scardmanage._fast", ["scardmanage/_fast.c"], optional=True)])
