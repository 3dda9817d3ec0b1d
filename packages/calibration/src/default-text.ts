/**
 * The in-package default calibration text: short English prose of several kinds (stories,
 * dialogue, explanations, instructions, lists), written for lowbit and released with it under its
 * MIT license. Documents are separated by blank lines. Real calibration should use text like the
 * model's own training data; this default only makes a first run possible without any.
 */
export const DEFAULT_CALIBRATION_TEXT = `Once upon a time, in a small village by the sea, there lived a girl named Mira. Every morning she walked to the harbour to watch the fishing boats come home. One day a boat came back with a torn sail, and the old captain looked worried. Mira ran home, found her grandmother's sewing box, and spent the whole afternoon mending the sail. The next morning the captain smiled and said, "Thank you, Mira. The sea is kinder to a boat with a good sail."

The little robot rolled into the kitchen and beeped twice. "Good morning," it said. "Would you like tea or coffee?" Sam rubbed his eyes and laughed. "Tea, please, and maybe some toast." The robot hummed, opened the cupboard, and carefully took out a blue cup. It was the first morning the robot had made breakfast, and it was very proud.

Water boils at one hundred degrees Celsius at sea level. At higher altitudes the air pressure is lower, so water boils at a lower temperature. This is why cooking pasta on a mountain takes longer: the water is not as hot, even though it is boiling.

To plant a tree, first choose a sunny place with enough room for the roots. Dig a hole twice as wide as the root ball and just as deep. Place the tree in the hole, fill it with soil, and press the soil down gently. Water the tree well, and keep watering it every few days for the first month.

The committee met on Tuesday to discuss the new library. Some members wanted a larger reading room; others asked for more computers and a quiet space for study. After a long debate they agreed on a plan: the ground floor would hold books for children, the first floor a reading room, and the top floor rooms for classes and meetings.

A computer program is a list of instructions. The computer follows them one by one, very quickly and without getting tired. When a program has a mistake, the computer still follows the instructions exactly, which is why programmers spend so much time testing their work and reading it again.

Tom and his dog Biscuit went to the park after school. Biscuit chased a red ball across the grass, then stopped to sniff a flower. A butterfly landed on his nose, and he sneezed so loudly that Tom fell over laughing. They played until the sun went down and walked home tired and happy.

Rivers carry water from mountains and hills down to lakes and oceans. Along the way they shape the land, cutting valleys and carrying sand and stones. Over thousands of years a small stream can carve a deep canyon, and a wide river can build new land where it meets the sea.

"Where are you going?" asked the owl. "To find the end of the forest," said the rabbit. The owl blinked slowly. "The forest has no end for those who keep walking in circles." The rabbit thought about this for a long time, then turned around and followed the path that led toward the river.

Shopping list: three apples, a loaf of bread, milk, two onions, rice, a bar of soap, and a birthday card for Grandpa. Remember to bring the bags, and do not forget the receipt for the jacket that needs to go back to the store.

In the winter the lake froze, and the children skated on the ice every afternoon. Their parents built a small fire on the shore and made hot chocolate. When the stars came out, everyone sat close to the fire and told stories about the summers long ago, when the lake was warm and full of fish.

The experiment was simple. We placed two plants by the same window, watered one every day and the other once a week. After a month the first plant was tall and green, while the second had yellow leaves. The result showed that this kind of plant needs a lot of water to grow well.`;
