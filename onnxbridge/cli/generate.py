"""``onnxbridge generate OUT_DIR --prompt "..." | --prompt-ids 1,2,3 | --audio FILE.wav``."""

from __future__ import annotations

import click

from .options import PROVIDER_CHOICE


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--prompt", "prompts", multiple=True, help="Text, encoded with the folder's tokenizer (repeatable).")
@click.option("--prompt-ids", "prompt_ids", multiple=True, metavar="1,2,3", help="Token ids (repeatable).")
@click.option(
    "--audio",
    "audio",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Speech folders: a WAV (PCM or float, the feature extractor's rate) or .npy of samples (repeatable).",
)
@click.option(
    "--input-features",
    type=click.Path(dir_okay=False),
    help="Speech folders: log-mel features (.npy, [batch,] mels, frames) instead of --audio.",
)
@click.option(
    "--language", help="Speech folders: Whisper's language (en, english); default: the config's, or detected."
)
@click.option("--translate", is_flag=True, help="Speech folders: Whisper's translate task instead of transcribe.")
@click.option("--max-new-tokens", type=int, default=32, show_default=True)
@click.option("--sample", is_flag=True, help="Sample instead of greedy decoding.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="With --sample.")
@click.option("--top-k", type=int, default=0, show_default=True, help="With --sample; 0 keeps every token.")
@click.option("--seed", type=int, default=0, show_default=True, help="With --sample.")
@click.option("--provider", type=PROVIDER_CHOICE, default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the tokens (and texts) as JSON instead of streaming.")
def generate(
    folder: str,
    prompts: tuple[str, ...],
    prompt_ids: tuple[str, ...],
    audio: tuple[str, ...],
    input_features: str | None,
    language: str | None,
    translate: bool,
    max_new_tokens: int,
    sample: bool,
    temperature: float,
    top_k: int,
    seed: int,
    provider: str,
    as_json: bool,
) -> int:
    """Generate from a with-past folder (convert FOLDER -o OUT_DIR), streaming tokens as they come.

    \b
      onnxbridge generate llama-onnx/ --prompt "Once upon a time" --max-new-tokens 40
      onnxbridge generate llama-onnx/ --prompt-ids 1,15,27 --sample --temperature 0.8 --top-k 50 --seed 1
      onnxbridge generate whisper-onnx/ --audio speech-16k.wav --language en
    """
    from ..errors import UsageError
    from ..generation.text import generate as run
    from ..generation.text import parse_ids, tokenizer

    speech = bool(audio) or input_features is not None
    if (bool(prompts) + bool(prompt_ids) + speech) != 1:
        raise UsageError(
            "give one of --prompt, --prompt-ids and --audio / --input-features",
            'e.g. --prompt "Hello", --prompt-ids 1,2,3 or --audio speech.wav',
        )
    ids = [parse_ids(p) for p in prompt_ids] if prompt_ids else None
    stream = None
    if not as_json:
        from pathlib import Path

        stream = _streamer(tokenizer(Path(folder)))
    result = run(
        folder,
        list(prompts) if prompts else None,
        prompt_ids=ids,
        audio=list(audio) if audio else None,
        input_features=input_features,
        language=language,
        translate=translate,
        max_new_tokens=max_new_tokens,
        sample=sample,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
        provider=provider,
        on_token=stream,
    )
    if as_json:
        import json

        click.echo(
            json.dumps(
                {
                    "prompts": result.prompts,
                    "tokens": result.tokens,
                    "texts": result.texts,
                    "provider": result.provider,
                    "seconds": result.seconds,
                }
            )
        )
    else:
        click.echo("")
        if len(result.tokens) > 1:
            for i, t in enumerate(result.texts or result.tokens):
                click.echo(f"[{i}] {t}")
        click.echo(
            f"{sum(len(t) for t in result.tokens)} tokens, {result.tokens_per_s:.1f} tokens/s ({result.provider})",
            err=True,
        )
    return 0


def _streamer(tok):
    """One row: its text (or ids) printed as each token comes; several: a dot a step."""
    seen: list[int] = []
    printed = [""]

    def on_step(step: int, tokens: tuple[int, ...]) -> None:
        if len(tokens) > 1:
            click.echo(".", nl=False)
            return
        seen.append(tokens[0])
        if tok is None:
            click.echo(f"{tokens[0]} ", nl=False)
            return
        text = tok.decode(seen, skip_special_tokens=True)
        click.echo(text[len(printed[0]) :], nl=False)
        printed[0] = text

    return on_step
