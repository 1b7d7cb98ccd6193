"""Small random-init transformers (no downloads) for the head / mlp / hidden targets: Hugging
Face BERT, RoBERTa, DeBERTa-v2, GPT-2, LLaMA, Mistral, Qwen2 and Qwen3 (grouped-query attention; QK-norm), T5 and ViT, plus
torch's nn.TransformerEncoder and a timm-style ViT written here with view/transpose/matmul/softmax."""
import torch
import transformers as tf
from torch import nn

VOCAB = 96


def _lm_inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, VOCAB, (2, 7), generator=g),)


def bert():
    return tf.BertModel(tf.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=64, max_position_embeddings=16)), _lm_inputs()


def roberta():
    return tf.RobertaModel(tf.RobertaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, intermediate_size=64,
                                            max_position_embeddings=20)), _lm_inputs()


def deberta_v2():  # disentangled attention: scores masked with masked_fill
    return tf.DebertaV2Model(tf.DebertaV2Config(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                                num_attention_heads=4, intermediate_size=64)), _lm_inputs()


def gpt2():
    return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=16,
                                            bos_token_id=0, eos_token_id=0)), _lm_inputs()


def _decoder(cls, config_cls, **extra):
    config = config_cls(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, intermediate_size=48, max_position_embeddings=32,
                        bos_token_id=0, eos_token_id=0, pad_token_id=0, **extra)
    return cls(config), _lm_inputs()


def llama():
    return _decoder(tf.LlamaForCausalLM, tf.LlamaConfig)


def mistral():
    return _decoder(tf.MistralForCausalLM, tf.MistralConfig, sliding_window=None)


def qwen2():
    return _decoder(tf.Qwen2ForCausalLM, tf.Qwen2Config)


def qwen3():  # a norm over head_dim shared by all heads (QK-norm) before attention
    return _decoder(tf.Qwen3ForCausalLM, tf.Qwen3Config, head_dim=8)


def t5():
    model = tf.T5Model(tf.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                   decoder_start_token_id=0, pad_token_id=0))
    ids = _lm_inputs()[0]
    return model, {"input_ids": ids, "decoder_input_ids": ids[:, :5]}


def vit():
    return tf.ViTModel(tf.ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=64)), (torch.randn(2, 3, 16, 16),)


def torch_encoder():
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), (torch.randn(2, 6, 32),)


class Attention(nn.Module):
    """timm-style attention: fused qkv, reshape/permute into heads, explicit softmax(q k^T) v."""

    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv, self.proj = nn.Linear(dim, dim * 3), nn.Linear(dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, -1)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TimmViT(nn.Module):
    def __init__(self, dim=32, depth=2, heads=4, classes=5):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, 4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 17, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


def timm_vit():
    return TimmViT(), (torch.randn(2, 3, 16, 16),)


HF_ZOO = {"bert": bert, "roberta": roberta, "deberta_v2": deberta_v2, "gpt2": gpt2, "llama": llama,
          "mistral": mistral, "qwen2": qwen2, "qwen3": qwen3, "t5": t5, "vit": vit, "torch_encoder": torch_encoder,
          "timm_vit": timm_vit}
LANGUAGE_MODELS = ("gpt2", "llama", "mistral", "qwen2", "qwen3")


def build(name, seed=0):
    torch.manual_seed(seed)
    model, inputs = HF_ZOO[name]()
    return model.eval(), inputs
