"""Benchmark environments with their own success checks, driven through pixels by the agent.

``miniwob_env``   MiniWoB++ (the ``miniwob`` package) in one real Chromium window
``dom_oracle``    a DOM-reading reference policy for those tasks (testing only)
``miniwob_bench`` episodes through the real agent loop, scored by MiniWoB's own reward
"""
