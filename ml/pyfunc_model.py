"""Models-from-code entry for MLflow: the code MLflow stores with every rtml model.

MLflow runs this file when loading the model; it only names the class, all
state comes from the model's artifacts (see :mod:`ml.pyfunc`).
"""

import mlflow.models

from ml.pyfunc import RtmlPyfuncModel

mlflow.models.set_model(RtmlPyfuncModel())
