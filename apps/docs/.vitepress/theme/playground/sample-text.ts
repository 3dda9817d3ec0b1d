/**
 * Sample text for the playground, written for this site (no data set is copied): short stories
 * separated by blank lines. The first half trains the demo tokenizer and classifier and is the
 * calibration text; the second half is held out for perplexity.
 */
export const SAMPLE_STORIES = `Once upon a time there was a little fox who lived at the edge of a big forest. Every morning the fox ran to the river to drink. One day she saw a small boat on the water. "Where are you going?" asked the fox. The boat did not answer, because boats cannot talk. The fox laughed and jumped into the boat, and the river carried her all the way to the sea. She saw fish and birds and a tall white house. When the sun went down, the fox walked home and told her mother about the sea.

Tom had a red ball. He liked to kick it in the garden. One day the ball went over the fence and into the garden of an old man. Tom was scared, but he knocked on the door. The old man opened it and smiled. "Is this your ball?" he asked. Tom said yes and said sorry. The old man gave him the ball and a cookie. After that, Tom and the old man were friends, and every week they played in the garden together.

Lily wanted to bake a cake for her dad. She took flour, eggs, milk and sugar. She mixed them in a big bowl. Her little brother wanted to help, so he put in a lot of salt. The cake looked good, but it tasted very bad. Lily was sad at first. Then she laughed, and her brother laughed too. They made a new cake together, and this time they used only sugar. Dad said it was the best cake in the world.

There was a small bird who could not fly. The other birds flew high in the sky, and the small bird watched them from the ground. Every day he tried to flap his wings. One day a kind girl found him and gave him seeds and water. She put him on a low branch. The bird flapped and flapped, and then he was in the air. He flew around the girl three times to say thank you, and then he flew up to join his friends.

Sam and Mia went to the park. They saw a big tree with a swing. Sam wanted to swing first, and Mia wanted to swing first too. They started to fight. Then a dog ran to them with a stick in his mouth. The dog wanted to play. Sam threw the stick, and Mia threw it the next time. They forgot about the swing and played with the dog until it was time to go home. On the way home they agreed to share the swing next time.

Once there was a bear who loved honey. He looked for honey in every tree. One day he found a tree full of bees. The bees were angry and buzzed around his head. The bear ran away and sat by the lake. A frog said, "Why don't you ask the bees?" So the bear went back and asked nicely. The bees gave him a little honey, and the bear helped them keep their tree safe from the wind.

Anna had a blue hat that she wore every day. One windy morning the hat flew off her head and went up into the sky. Anna ran after it through the town. She ran past the shop, past the school and past the big clock. At last the hat fell into a puddle. Anna picked it up. It was wet and dirty, but she was happy. She washed it at home and put it in the sun to dry.

A little boy named Ben found a shiny stone on the beach. He thought it was magic. He held it and made a wish for a friend. Just then a girl came running with a bucket. "Do you want to build a castle?" she asked. Ben said yes. They built the biggest sand castle on the beach. Ben never knew if the stone was magic, but he kept it in his pocket for a long time.

The moon was very bright one night. A small owl sat on a branch and looked at it. "I want to fly to the moon," said the owl. His mother said the moon was too far. The owl flew as high as he could, higher than the trees and higher than the hill. He could not reach the moon, but he could see the whole town below him, with all its little lights. He flew home and told his mother that the town was as pretty as the moon.

Max liked to draw. He drew cats, dogs, cars and houses. One day his teacher asked everyone to draw their family. Max drew his mom, his dad, his sister and his fish. He made the fish very big because he loved it very much. The other children laughed at the big fish. Max felt bad, but the teacher said it was a wonderful picture. She put it on the wall, and Max smiled all day.

One rainy day Rosie could not go outside. She was bored. Her grandma gave her a box of old buttons. Rosie sorted them by color: red, blue, green and yellow. Then she made a picture of a flower with the buttons. Grandma said it was beautiful. When the rain stopped, they went outside and looked at real flowers, and Rosie said her button flower was the prettiest one.

There was a cat named Mittens who liked to sleep in the sun. Every afternoon she found a warm spot by the window. One day a new puppy came to the house. The puppy wanted to play, but Mittens wanted to sleep. The puppy barked and jumped. Mittens was cross. Then the sun went behind a cloud, and the room was cold. The puppy lay down next to Mittens, and he was warm. From that day on they slept in the sun together.

Jack wanted to be the fastest runner in his class. Every day he ran around the field after school. At first he was slow and tired. His friend Lucy ran with him and cheered for him. After many weeks Jack was much faster. On the day of the race he did not come first, but he ran faster than ever before. Lucy gave him a hug, and Jack was proud of himself.

A little duck lost her way in the tall grass. She called for her mother, but nobody came. She walked and walked until she found a fence. A horse on the other side asked what was wrong. The duck told him she was lost. The horse was very tall, so he could see far away. "Your mother is by the pond," he said. The duck ran to the pond, and her mother was there, waiting with her brothers and sisters.

Emma had a garden with one small seed in it. She watered it every day and waited. Nothing happened for a long time. Her friends said the seed would never grow. Emma kept watering it. One morning she saw a tiny green leaf. Soon there was a stem, and then a big yellow sunflower, taller than Emma. She took a picture of it and showed it to all her friends.

Leo was afraid of the dark. At night he kept the light on. One night his dad gave him a small flashlight. "When you feel scared, look around with this," said Dad. Leo turned off the big light and looked around with the flashlight. He saw his toys, his books and his chair. Nothing was scary. Leo smiled, turned off the flashlight and went to sleep.

Once upon a time a little mouse lived under the stairs of a big house. The mouse was hungry, so she went to the kitchen to look for food. She found a piece of cheese on the table, but a cat was sleeping next to it. The mouse walked very slowly and very quietly. She took the cheese and ran back under the stairs. The cat never woke up, and the mouse had a good dinner.

Ella and her brother built a fort with blankets and chairs. They brought books, pillows and a lamp inside. It was their secret castle. Their mom asked if she could come in. They said she had to know the password. Mom thought and said, "Cookies?" The children laughed and let her in, and she really did have cookies for them.

A small boat sailed on the sea. The wind was strong and the waves were big. The sailor was a little scared, but he held the wheel tight. He sang a song to feel brave. After a long time the sky turned blue and the sea was calm. He saw an island with green trees and a white beach. The sailor stopped there to rest, and he ate a big red apple in the shade.

Nora wanted a pet, but her mom said they had no room. One day Nora found a snail in the garden. She put it in a jar with leaves and a little water. She called it Speedy, because it was very slow. Every day she watched Speedy eat and climb. After a week she took Speedy back to the garden, because she thought he missed his home. She visited him every day.

There was a tall giraffe who felt lonely because she was so tall. The other animals could not talk to her face to face. One day a monkey climbed up a tree so he could sit next to her head. They talked and laughed all afternoon. The giraffe was happy to have a friend, and the monkey liked to see the whole jungle from up high.

Paul dropped his ice cream on the ground. He started to cry. A girl with a big smile came over and gave him half of her ice cream. Paul stopped crying and said thank you. They sat on a bench and ate together. The girl said her name was Kim. After that day Paul and Kim always shared their ice cream.

The old tree in the park was very big. Many animals lived in it. A squirrel lived at the top, a bird lived in the middle and a rabbit lived near the roots. One day a storm came, and the wind was very strong. The animals were scared, but the old tree held on. In the morning the sun came out, and all the animals came out to thank the tree for keeping them safe.

Mia found an old key in the attic. She tried it in every door of the house, but it did not fit. Then she found a small box under her grandpa's bed. The key fit the box. Inside there were old letters and a photo of her grandma when she was young. Grandpa told Mia the story of how they met at a dance. Mia listened and smiled, and she kept the key on a string around her neck.
`;
