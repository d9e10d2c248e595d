"""Tool-using support agent: router, tools, escalation policy, trace (see ``agent.SupportAgent``)."""

from assistant.agent.agent import AgentFinal, AgentReply, SupportAgent

__all__ = ["AgentFinal", "AgentReply", "SupportAgent"]
