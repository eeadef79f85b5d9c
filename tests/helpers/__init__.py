"""Code shared by several test suites; suites never import from each other (issue #12).

Stand-ins of real peers and load tools (``telegram_fake``, ``vk_api_server``,
``max_api_server``, ``mail_servers``, ``loadgen``, ``workload``), scenario harnesses
(``citizen_harness``, ``applications_harness``, ``complaints_harness``, per-channel citizen
adapters in ``channels``) and per-topic helpers and fixtures (``payloads``, ``vk``, ``vk_bot``,
``vk_sender``, ``max``, ``phone``, ``ui``, ``login``, ``ui_e2e``, ``applications_ui``, the
API suites' ``api_abuse``, …). A fixture defined here is imported by each suite that uses it
(with ``# noqa: F401``).
``tests/test_layout_of_tests.py`` keeps it so.
"""
