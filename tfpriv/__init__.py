"""tfpriv: private deep learning for TensorFlow/Keras.

Sub-packages by concern:
  tfpriv.dp         differential privacy for Keras (make_private, accounting, PATE, mechanisms)
  tfpriv.data       MNIST and UCI Credit Approval loaders
  tfpriv.federated  federated learning on TensorFlow Federated
  tfpriv.crypto     secret sharing, SMPC and RLWE encryption in NumPy
  tfpriv.model      Functional-API MLP and CNN builders

Importing `tfpriv` itself is cheap: TensorFlow is only imported by the modules
that need it.
"""

__version__ = '0.1.0'
