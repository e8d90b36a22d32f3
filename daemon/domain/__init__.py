"""The pure decision core: no I/O, no clock, no environment. Everything here is tested by tables."""
