"""DS-MLP training stages: distillation (stage 1) and alignment (stage 2)."""

from tfdsmlp.distill.aligner import Aligner
from tfdsmlp.distill.distiller import Distiller
from tfdsmlp.distill.kd_loss import KD_KINDS, KDLoss

__all__ = ["Aligner", "Distiller", "KDLoss", "KD_KINDS"]
