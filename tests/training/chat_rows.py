"""Chat rows of varying prompt and answer lengths for the SFT fast-path tests."""

ROWS = [
    {"prompt": [{"role": "user", "content": f"Question {i}: what is {i} plus {i}?" + " Think." * (i % 4)}],
     "completion": [{"role": "assistant", "content": f"It is {2 * i}." + " Sure." * (i % 3)}]}
    for i in range(12)
]
