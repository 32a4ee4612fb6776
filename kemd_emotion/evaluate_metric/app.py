"""The metric's Space: `evaluate`'s standard widget (run by the Space as `python app.py`)."""

if __name__ == "__main__":
    import evaluate
    from evaluate.utils import launch_gradio_widget

    launch_gradio_widget(evaluate.load("kemd_emotion.py"))
