"""Job handlers: the side effects of escalation decisions, each idempotent on its job key.

A handler loads the escalation, talks to one vendor through its Protocol, feeds the outcome to
the pure state machine (`domain.transitions`) and returns the resulting `Changes`, which the
runner commits together with the job's completion: the shape `handler.step_handler` gives every
handler that moves an escalation.
"""
