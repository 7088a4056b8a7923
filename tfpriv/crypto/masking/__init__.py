"""SecAgg+ masking secure aggregation (Bonawitz et al. 2017; Bell et al. 2020)."""

from tfpriv.crypto.masking.protocol import Dropouts
from tfpriv.crypto.masking.quantize import Quantizer
from tfpriv.crypto.masking.secagg import MaskingAggregator

__all__ = ['Dropouts', 'MaskingAggregator', 'Quantizer']
