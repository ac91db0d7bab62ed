"""Relay's agents: planner, researcher, analyst and writer (Strands), their tools, the
model factory, the offline extractive model and the corpora they search.

Public API::

    from relay_agents.planner import plan_questions
    from relay_agents.researcher import research, ResearchResult
    from relay_agents.analyst import analyze, AnalysisResult
    from relay_agents.writer import write_report
    from relay_agents.model_factory import build_model, describe_model
    from relay_agents.provenance import OFFLINE_NOTICE, OFFLINE_MODEL_ID
    from relay_agents.settings import AgentSettings
    from relay_agents.corpus import corpus_from_settings, FolderCorpus, S3Corpus, KnowledgeBaseCorpus, BotocoreDocsCorpus

Submodules are imported on demand (importing this package loads nothing heavy). The
offline model (``relay_agents.offline``, a package) is imported only by
:func:`~relay_agents.model_factory.build_model` when the offline provider is selected:
no production module imports it (tests/unit/agents/test_offline_isolation.py).
The analyst and the writer take the compiled research as
:class:`relay_core.models.ResearchDocument`, never as Markdown.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
