"""minibert: BERT from scratch on minitransformer's parts — MLM + NSP pretraining (Article §3.2.3
预训练), fine-tuning for classification and NER (§3.2.4 微调, §4.3, §6.2), the article's metrics
(§3.2.5 评估, with F1 correctly the harmonic mean of precision and recall), and loading Hugging
Face BERT checkpoints (§3.2.2 模型选择) and exporting to them (``save_pretrained``).

Command line: ``python -m minibert {pretrain,finetune,evaluate} --help``.
"""
from .config import BertConfig, count_bert_parameters
from .heads import (
    IGNORE_INDEX,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    ClassifierOutput,
    PreTrainingOutput,
    mlm_loss,
    nsp_loss,
)
from .export import save_pretrained
from .model import BertModel, BertOutput
from .albert import AlbertConfig, AlbertForMaskedLM, AlbertForPreTraining, AlbertModel
from .distilbert import DistilBertConfig, DistilBertForMaskedLM, DistilBertModel, distillation_loss_fn, student_from_teacher
from .electra import (ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel, replaced_token_detection_step,
                      share_embeddings)
from .roberta import RobertaConfig, RobertaForMaskedLM, RobertaModel
from .wordpiece import WordPieceTokenizer

__all__ = [
    "BertConfig", "count_bert_parameters", "BertModel", "BertOutput", "BertForPreTraining",
    "BertForSequenceClassification", "BertForTokenClassification", "PreTrainingOutput", "ClassifierOutput",
    "mlm_loss", "nsp_loss", "IGNORE_INDEX", "WordPieceTokenizer", "save_pretrained",
    "RobertaConfig", "RobertaModel", "RobertaForMaskedLM",
    "AlbertConfig", "AlbertModel", "AlbertForMaskedLM", "AlbertForPreTraining",
    "DistilBertConfig", "DistilBertModel", "DistilBertForMaskedLM", "student_from_teacher", "distillation_loss_fn",
    "ElectraConfig", "ElectraModel", "ElectraForMaskedLM", "ElectraForPreTraining", "replaced_token_detection_step",
    "share_embeddings",
]
