"""DS-MLP training stages: distillation (stage 1) and alignment (stage 2)."""

from tfdsmlp.distill.aligner import Aligner
from tfdsmlp.distill.config import AlignerConfig, DistillerConfig
from tfdsmlp.distill.distiller import Distiller
from tfdsmlp.distill.kd_loss import KD_KINDS, KDLoss

__all__ = ["KD_KINDS", "Aligner", "AlignerConfig", "Distiller",
           "DistillerConfig", "KDLoss"]
