"""Small versions of real CNN layouts (torchvision cannot be used here), for graph tests."""
import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(c_in, c_out, k=3, stride=1, groups=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), act())


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.a = conv_bn(c_in, c_out, stride=stride)
        self.b = nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.short = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + self.short(x))


class Bottleneck(nn.Module):
    def __init__(self, c_in, mid, c_out, stride=1, groups=1):
        super().__init__()
        self.a = conv_bn(c_in, mid, 1)
        self.b = conv_bn(mid, mid, 3, stride, groups=groups)
        self.c = nn.Sequential(nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.short = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return F.relu(self.c(self.b(self.a(x))) + self.short(x))


def head(c, classes=10):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))


def resnet18():
    return nn.Sequential(conv_bn(3, 16), BasicBlock(16, 16), BasicBlock(16, 16), BasicBlock(16, 32, 2),
                         BasicBlock(32, 32), BasicBlock(32, 64, 2), head(64))


def resnet50():
    return nn.Sequential(conv_bn(3, 16), Bottleneck(16, 8, 32), Bottleneck(32, 8, 32), Bottleneck(32, 16, 64, 2),
                         head(64))


def resnext():
    return nn.Sequential(conv_bn(3, 16), Bottleneck(16, 16, 32, groups=4), Bottleneck(32, 16, 32, groups=4), head(32))


class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, expand, stride=1, se=False, act=nn.ReLU6):
        super().__init__()
        mid = c_in * expand
        layers = [conv_bn(c_in, mid, 1, act=act), conv_bn(mid, mid, 3, stride, groups=mid, act=act)]
        if se:
            layers.append(SqueezeExcite(mid))
        layers += [nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


def mobilenet_v2():
    return nn.Sequential(conv_bn(3, 16, stride=2), InvertedResidual(16, 16, 4), InvertedResidual(16, 24, 4, 2),
                         InvertedResidual(24, 24, 4), conv_bn(24, 64, 1), head(64))


def mobilenet_v3():
    return nn.Sequential(conv_bn(3, 16, stride=2, act=nn.Hardswish), InvertedResidual(16, 16, 3, se=True, act=nn.Hardswish),
                         InvertedResidual(16, 24, 3, 2, se=True, act=nn.Hardswish), conv_bn(24, 48, 1, act=nn.Hardswish),
                         head(48))


def efficientnet_b0():
    return nn.Sequential(conv_bn(3, 16, stride=2, act=nn.SiLU), InvertedResidual(16, 16, 1, se=True, act=nn.SiLU),
                         InvertedResidual(16, 24, 6, 2, se=True, act=nn.SiLU),
                         InvertedResidual(24, 24, 6, se=True, act=nn.SiLU), conv_bn(24, 64, 1, act=nn.SiLU), head(64))


class DenseBlock(nn.Module):
    def __init__(self, c_in, growth=8, layers=3):
        super().__init__()
        self.layers = nn.ModuleList(conv_bn(c_in + i * growth, growth) for i in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        return x


def densenet():
    return nn.Sequential(conv_bn(3, 16), DenseBlock(16), conv_bn(40, 24, 1), head(24))


class Inception(nn.Module):
    def __init__(self, c_in):
        super().__init__()
        self.b1 = conv_bn(c_in, 8, 1)
        self.b2 = nn.Sequential(conv_bn(c_in, 8, 1), conv_bn(8, 12, 3))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(c_in, 6, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)


def inception():
    return nn.Sequential(conv_bn(3, 16), Inception(16), Inception(26), head(26))


class ConvNeXtBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1 = nn.Linear(c, 4 * c)
        self.pw2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 0.5))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


def convnext():
    return nn.Sequential(nn.Conv2d(3, 16, 2, 2), ConvNeXtBlock(16), ConvNeXtBlock(16), head(16))


def channel_shuffle(x, groups):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, c):
        super().__init__()
        half = c // 2
        self.branch = nn.Sequential(conv_bn(half, half, 1), conv_bn(half, half, 3, groups=half), conv_bn(half, half, 1))

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([a, self.branch(b)], 1), 2)


def shufflenet_v2():
    return nn.Sequential(conv_bn(3, 16), ShuffleUnit(16), ShuffleUnit(16), conv_bn(16, 32, 1), head(32))


class C2f(nn.Module):
    def __init__(self, c_in, c_out, n=2):
        super().__init__()
        self.hidden = c_out // 2
        self.cv1 = conv_bn(c_in, 2 * self.hidden, 1, act=nn.SiLU)
        self.m = nn.ModuleList(conv_bn(self.hidden, self.hidden, 3, act=nn.SiLU) for _ in range(n))
        self.cv2 = conv_bn((2 + n) * self.hidden, c_out, 1, act=nn.SiLU)

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


def yolo_c2f():
    return nn.Sequential(conv_bn(3, 16, stride=2, act=nn.SiLU), C2f(16, 32), C2f(32, 32), head(32))


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1, self.enc2 = conv_bn(3, 16), conv_bn(16, 32, stride=2)
        self.mid = conv_bn(32, 32)
        self.up = nn.ConvTranspose2d(32, 16, 2, 2)
        self.dec = conv_bn(32, 16)
        self.out = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        u = self.up(self.mid(self.enc2(e1)))
        return self.out(self.dec(torch.cat([u, e1], 1)))


def vgg():
    return nn.Sequential(conv_bn(3, 16), nn.MaxPool2d(2), conv_bn(16, 32), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))


def audio_1d():
    return nn.Sequential(nn.Conv1d(1, 16, 9, 2, 4), nn.BatchNorm1d(16), nn.ReLU(), nn.Conv1d(16, 32, 5, 2, 2),
                         nn.GroupNorm(4, 32), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 5))


ZOO = {
    "resnet18": (resnet18, (2, 3, 8, 8)), "resnet50": (resnet50, (2, 3, 8, 8)), "resnext": (resnext, (2, 3, 8, 8)),
    "mobilenet_v2": (mobilenet_v2, (2, 3, 16, 16)), "mobilenet_v3": (mobilenet_v3, (2, 3, 16, 16)),
    "efficientnet_b0": (efficientnet_b0, (2, 3, 16, 16)), "densenet": (densenet, (2, 3, 8, 8)),
    "inception": (inception, (2, 3, 8, 8)), "convnext": (convnext, (2, 3, 16, 16)),
    "shufflenet_v2": (shufflenet_v2, (2, 3, 8, 8)), "yolo_c2f": (yolo_c2f, (2, 3, 16, 16)),
    "unet": (UNet, (2, 3, 8, 8)), "vgg": (vgg, (2, 3, 8, 8)), "audio_1d": (audio_1d, (2, 1, 64)),
}


def build(name, seed=0):
    factory, shape = ZOO[name]
    torch.manual_seed(seed)
    model = factory().eval()
    with torch.no_grad():  # non-trivial norm statistics and affine parameters
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model, (torch.randn(*shape),)
