"""Data for the chapters: a bilingual toy world (``world``), readers for real datasets
(``loaders``, ``conll``) and tokenizers (``tokenizers``). Article §3.2.1 数据准备.

    from minitransformer.data import load_world_reviews, split_dataset, SentencePieceTokenizer
"""
from .conll import TaggedSentence, iob1_to_iob2, load_conll, to_char_level
from .loaders import (
    Example, LabelVocab, check_min_length, load_classification, load_classification_files, load_documents,
    load_parallel, load_text, read_text_file, split_dataset, split_lines,
)
from .tokenizers import (
    BERT_SPECIALS, GPT_SPECIALS, CharTokenizer, SentencePieceTokenizer, Tokenizer, load_tokenizer,
    register_tokenizer,
)
from .world_files import (
    DATA_DIR, build_world, generate_world, load_world_documents, load_world_ner, load_world_notes, load_world_reviews,
    load_world_short_reviews, load_world_translation, world_path,
)

__all__ = [
    "TaggedSentence", "iob1_to_iob2", "load_conll", "to_char_level",
    "Example", "LabelVocab", "check_min_length", "load_classification", "load_classification_files",
    "load_documents", "load_parallel", "load_text", "read_text_file", "split_dataset", "split_lines",
    "BERT_SPECIALS", "GPT_SPECIALS", "CharTokenizer", "SentencePieceTokenizer", "Tokenizer", "load_tokenizer",
    "register_tokenizer",
    "DATA_DIR", "build_world", "generate_world", "load_world_documents", "load_world_ner", "load_world_notes",
    "load_world_reviews", "load_world_short_reviews", "load_world_translation", "world_path",
]
