"""Plain ``pytest`` and ``pytest --nbval notebooks/...`` run the notebooks at the ``smoke``
profile (a few minutes in all), unless ``NB_PROFILE`` names another: without this, a laptop
would run every notebook at the ``cpu`` profile (about an hour) and a GPU machine at ``gpu``.

The kernels that nbval starts inherit this process's environment, so setting the variable
here, before any notebook is collected, is enough.
"""

import os

os.environ.setdefault("NB_PROFILE", "smoke")
