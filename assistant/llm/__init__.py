"""Language models behind one small interface (``base``): the local and vLLM backends, the vLLM server
Helpmate starts (``vllm_server``), and which model version is active (``versions``)."""
